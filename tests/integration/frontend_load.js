// Load UI workflows into ComfyUI's own frontend (headless Chromium, 1920 x 1080) and report what it made of them.
// Usage: node frontend_load.js <server url> <screenshot dir or ""> <workflow.json>...
// (needs puppeteer-core; CHROMIUM = browser path). Prints JSON, per file name:
//   nodes, bad (types the frontend could not build or flagged), prompt (graphToPrompt().output),
//   missing_models (the Missing Models dialog's entries), ds ({scale, offset} after loading),
//   low_quality (the canvas draws boxes without text at this zoom), layout (per node: its drawn area
//   with title bar and badges, in graph units, and the screen rectangle), groups (title area and
//   bounding), cut_labels (widgets whose label or value the frontend truncates), overflowing_notes
//   (Note text that needs a scroll bar), covered (sample points of the screen that the frontend's
//   sidebar, tab bar, toolbar, minimap ... cover: [x, y, what]) and screenshot (its path).
const puppeteer = require('puppeteer-core');
const fs = require('fs');
const path = require('path');

const {sleep, closeDialogs} = require('./frontend_common.js');

// Open Workflow > Browse Templates on the pack's category: its cards (title, description, thumbnail loaded?).
async function templatesBrowser(page, shotDir) {
  await page.evaluate(() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates'));
  await sleep(2000);
  const found = await page.evaluate(() => {
    const item = Array.from(document.querySelectorAll('.p-dialog *')).find(
      e => e.children.length === 0 && /glyphsr/i.test(e.textContent || ''));
    if (item) item.click();
    return item ? item.textContent.trim() : null;
  });
  await sleep(3000);
  // thumbnails arrive as blob: URLs; a card is the nearest ancestor of its image that has text
  const cards = await page.evaluate(() => Array.from(document.querySelectorAll('.p-dialog img')).map(img => {
    let card = img.parentElement;
    while (card && !(card.innerText || '').trim()) card = card.parentElement;
    return {text: card ? card.innerText.replace(/\s+/g, ' ').trim() : '', loaded: img.complete && img.naturalWidth > 0,
            width: img.naturalWidth, height: img.naturalHeight};
  }));
  let screenshot = null;
  if (shotDir) {
    screenshot = path.join(shotDir, 'templates_browser.png');
    await page.screenshot({path: screenshot});
  }
  return {category: found, cards, screenshot};
}

(async () => {
  const [url, shotDir, ...files] = process.argv.slice(2);
  const browser = await puppeteer.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    defaultViewport: {width: 1920, height: 1080}});
  try {
    const page = await browser.newPage();
    await page.goto(url, {waitUntil: 'networkidle2', timeout: 120000});
    await page.waitForFunction(() => window.app && window.app.graph && window.LiteGraph, {timeout: 120000});
    await sleep(1500);
    await closeDialogs(page);  // the first-run Templates browser
    const report = {};
    for (const file of files) {
      const ui = JSON.parse(fs.readFileSync(file, 'utf8'));
      const loaded = await page.evaluate(async (ui) => {
        await window.app.loadGraphData(ui, true, true, 'check');
        const nodes = window.app.graph._nodes || window.app.graph.nodes;
        const bad = nodes.filter(n => n.has_errors || !window.LiteGraph.registered_node_types[n.type]).map(n => n.type);
        const prompt = await window.app.graphToPrompt();
        return {nodes: nodes.length, bad, prompt: prompt.output};
      }, ui);
      await sleep(1500);
      loaded.missing_models = await page.evaluate(() =>
        Array.from(document.querySelectorAll('.comfy-missing-models li')).map(li => li.innerText.replace(/\s+/g, ' ').trim()));
      await closeDialogs(page);
      await sleep(500);
      Object.assign(loaded, await page.evaluate(() => {
        const app = window.app, canvas = app.canvas, LG = window.LiteGraph;
        canvas.draw(true, true);
        const ds = canvas.ds;
        const scale = ds.scale, offset = [ds.offset[0], ds.offset[1]];
        const toScreen = (x, y) => [(x + offset[0]) * scale, (y + offset[1]) * scale];
        const nodes = app.graph._nodes || app.graph.nodes;
        const ctx = canvas.ctx || canvas.canvas.getContext('2d');
        const layout = [], cut = [], overflowing = [];
        for (const node of nodes) {
          const title = LG.NODE_TITLE_HEIGHT;
          const badges = (node.badges || []).map(b => (typeof b === 'function' ? b() : b)).filter(b => b && b.text);
          const badgeHeight = badges.length ? Math.max(...badges.map(b => b.height || 20)) + 2 : 0;
          const [x, y] = node.pos, [w, h] = node.size;
          const area = [x, y - title - badgeHeight, w, h + title + badgeHeight];
          const [sx, sy] = toScreen(area[0], area[1]);
          const minSize = node.computeSize ? Array.from(node.computeSize()) : null;
          layout.push({id: node.id, type: node.type, title: node.title, pos: [x, y], size: [w, h], min_size: minSize,
                       badges: badges.map(b => b.text), area, screen: [sx, sy, area[2] * scale, area[3] * scale]});
          ctx.save();
          ctx.font = canvas.inner_text_font;
          for (const widget of node.widgets || []) {
            if (!['combo', 'number', 'text'].includes(widget.type) || widget.hidden || widget.computedDisabled) continue;
            const C = widget.constructor, margin = C.margin ?? 15, gap = C.labelValueGap ?? 5;
            const label = String(widget.displayName ?? widget.label ?? widget.name);
            const value = String(widget._displayValue ?? widget.value);
            const room = w - (margin * 2 + 5) - 2 * margin - 20;
            const need = ctx.measureText(label).width + gap + ctx.measureText(value).width;
            if (need > room) cut.push({node: node.id, type: node.type, widget: widget.name, need: Math.ceil(need),
                                       room: Math.floor(room)});
          }
          ctx.restore();
          if (node.type === 'Note' || node.type === 'MarkdownNote') {
            const el = (node.widgets || []).map(wg => wg.element || wg.inputEl).find(e => e && e.scrollHeight !== undefined);
            if (!el) overflowing.push({node: node.id, error: 'no text element'});
            if (el && el.scrollHeight > el.clientHeight + 2) overflowing.push({node: node.id, scroll: el.scrollHeight,
                                                                                 client: el.clientHeight});
          }
        }
        const groups = (app.graph._groups || app.graph.groups || []).map(g => ({
          title: g.title, bounding: Array.from(g._bounding || g.boundingRect), title_height: g.titleHeight}));
        // what the frontend draws over the canvas: sample every 10 px, ignore widgets living on nodes
        const canvasEl = canvas.canvas;
        const covered = [];
        for (let py = 0; py < window.innerHeight; py += 10) {
          for (let px = 0; px < window.innerWidth; px += 10) {
            const el = document.elementFromPoint(px, py);
            if (!el || el === canvasEl || el.closest('.dom-widget, .comfy-multiline-input, .graph-canvas-container > canvas')) continue;
            if (el.closest('.lg-node, .comfy-img-preview')) continue;
            const top = el.closest('nav, [class*="minimap"], [class*="tabs"], [class*="toolbar"], [class*="actionbar"], [class*="splitter"], [class*="menu"]');
            covered.push([px, py, ((top || el).className || (top || el).tagName).toString().slice(0, 60)]);
          }
        }
        return {ds: {scale, offset}, low_quality: !!canvas.low_quality, layout, groups, cut_labels: cut,
                overflowing_notes: overflowing, covered};
      }));
      if (shotDir) {
        const shot = path.join(shotDir, path.basename(file).replace(/\.json$/, '.png'));
        await page.screenshot({path: shot});
        loaded.screenshot = shot;
      }
      report[path.basename(file)] = loaded;
    }
    report.templates = await templatesBrowser(page, shotDir);
    process.stdout.write(JSON.stringify(report));
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
