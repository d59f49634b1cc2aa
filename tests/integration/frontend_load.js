// Load UI workflows into ComfyUI's own frontend (headless Chromium) and report what it made of them.
// Usage: node frontend_load.js <server url> <workflow.json>...   (needs puppeteer-core; CHROMIUM = browser path)
// Prints JSON: {file: {nodes, bad: [types the frontend could not build or flagged], prompt: graphToPrompt().output}}
const puppeteer = require('puppeteer-core');
const fs = require('fs');
const path = require('path');

(async () => {
  const [url, ...files] = process.argv.slice(2);
  const browser = await puppeteer.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']});
  try {
    const page = await browser.newPage();
    await page.goto(url, {waitUntil: 'networkidle2', timeout: 120000});
    await page.waitForFunction(() => window.app && window.app.graph && window.LiteGraph, {timeout: 120000});
    const report = {};
    for (const file of files) {
      const ui = JSON.parse(fs.readFileSync(file, 'utf8'));
      report[path.basename(file)] = await page.evaluate(async (ui) => {
        await window.app.loadGraphData(ui, true, true, 'check');
        const nodes = window.app.graph._nodes || window.app.graph.nodes;
        const bad = nodes.filter(n => n.has_errors || !window.LiteGraph.registered_node_types[n.type]).map(n => n.type);
        const prompt = await window.app.graphToPrompt();
        return {nodes: nodes.length, bad, prompt: prompt.output};
      }, ui);
    }
    process.stdout.write(JSON.stringify(report));
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
