// Run a graph with GlyphSR Review Words in ComfyUI's own frontend (headless Chromium) and use the dialog as a person would.
// Usage: node frontend_review.js <server url> <screenshot dir> <api prompt.json> <review node id> <word> <new text>
// Loads the API prompt, queues it, waits for the dialog, retypes <word> as <new text>, draws a box at the
// bottom left and types "BREAD" into it, presses Continue; then queues the graph again and presses Continue
// on the second dialog without changes. Prints JSON: runs (per run: prompt_id, the words the dialog showed,
// error text shown), corrections (the node's widget after the first Continue), screenshots.
const puppeteer = require('puppeteer-core');
const fs = require('fs');
const path = require('path');
const {sleep, closeDialogs} = require('./frontend_common.js');

const DIALOG = '.glyphsr-review';

async function queueAndWaitForDialog(page) {
  await page.evaluate(() => {
    window.__glyphsrDone = null;
    window.__glyphsrApi.addEventListener('execution_success', (e) => { window.__glyphsrDone = e.detail.prompt_id; },
      {once: true});
    return window.app.queuePrompt(0, 1);
  });
  await page.waitForSelector(`${DIALOG} input.glyphsr-review-word`, {timeout: 180000});
  await sleep(800); // the image loads
  return page.$$eval(`${DIALOG} input.glyphsr-review-word`, (inputs) => inputs.map((i) => i.value));
}

async function continueAndWaitForRun(page) {
  await page.click(`${DIALOG} .glyphsr-review-continue`);
  await page.waitForFunction((dialog) => !document.querySelector(dialog) ||
    /Not accepted/.test(document.querySelector(`${dialog} .glyphsr-review-status`).textContent), {timeout: 30000}, DIALOG);
  const refused = await page.$eval(`${DIALOG} .glyphsr-review-status`, (e) => e.textContent).catch(() => null);
  if (refused) throw new Error(`the server refused the review: ${refused}`);
  await page.waitForFunction(() => window.__glyphsrDone, {timeout: 300000});
  return page.evaluate(() => window.__glyphsrDone);
}

async function drawBox(page, fromFraction, toFraction) {
  const canvas = await page.$(`${DIALOG} canvas`);
  const box = await canvas.boundingBox();
  const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
  await page.mouse.move(...at(fromFraction));
  await page.mouse.down();
  await page.mouse.move(...at(toFraction), {steps: 5});
  await page.mouse.up();
}

(async () => {
  const [url, shotDir, promptFile, nodeId, word, replacement] = process.argv.slice(2);
  const prompt = JSON.parse(fs.readFileSync(promptFile, 'utf8'));
  const browser = await puppeteer.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    defaultViewport: {width: 1600, height: 900}});
  const report = {runs: [], screenshots: []};
  const shot = async (name, element) => {
    const file = path.join(shotDir, name);
    await (element || page).screenshot({path: file});
    report.screenshots.push(file);
  };
  let page;
  try {
    page = await browser.newPage();
    await page.goto(url, {waitUntil: 'networkidle2', timeout: 120000});
    await page.waitForFunction(() => window.app && window.app.graph && window.LiteGraph, {timeout: 120000});
    await sleep(1500);
    await closeDialogs(page);
    await page.evaluate(async (prompt) => {
      const {api} = await import('/scripts/api.js');
      window.__glyphsrApi = api;
      await window.app.loadApiJson(prompt, 'review.json');
    }, prompt);
    await sleep(1000);

    // first run: retype one word, draw a missing one
    const shown = await queueAndWaitForDialog(page);
    await shot('review_words_dialog_opened.png');
    const inputs = await page.$$(`${DIALOG} input.glyphsr-review-word`);
    const index = shown.indexOf(word);
    if (index < 0) throw new Error(`the dialog does not show ${word}: ${JSON.stringify(shown)}`);
    await inputs[index].click({clickCount: 3});
    await inputs[index].type(replacement);
    await drawBox(page, [0.05, 0.68], [0.42, 0.95]);
    await page.keyboard.type('BREAD');
    await sleep(300);
    await shot('review_words_dialog_edited.png');
    await shot('review_words_panel.png', await page.$(`${DIALOG} > div`));
    const error = await page.$eval(`${DIALOG} .glyphsr-review-status`, (e) => e.textContent);
    report.runs.push({shown, error, prompt_id: await continueAndWaitForRun(page)});
    report.corrections = await page.evaluate((id) => {
      const node = window.app.graph.getNodeById(Number(id));
      return node.widgets.find((w) => w.name === 'corrections').value;
    }, nodeId);

    // second run: the stored corrections are shown; Continue as it is
    const again = await queueAndWaitForDialog(page);
    report.runs.push({shown: again, error: '', prompt_id: await continueAndWaitForRun(page)});
    process.stdout.write(JSON.stringify(report));
  } catch (e) {
    if (page) await shot('review_words_failure.png').catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
