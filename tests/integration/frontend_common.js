// Helpers shared by the scripts that drive ComfyUI's frontend in headless Chromium (puppeteer-core).
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

async function closeDialogs(page) {
  // the first-run Templates browser and the Missing Models dialog; the former may open late
  for (let i = 0, quiet = 0; i < 30 && quiet < 4; i++) {
    const open = await page.evaluate(() => !!document.querySelector('.p-dialog-mask, .p-dialog'));
    if (open) {
      quiet = 0;
      const clicked = await page.evaluate(() => {
        const dialogs = Array.from(document.querySelectorAll('.p-dialog'));
        const buttons = dialogs.flatMap(d => Array.from(d.querySelectorAll('button')));
        const close = buttons.find(b => /close/i.test((b.getAttribute('aria-label') || '') + ' ' + b.className));
        if (close) close.click();
        return !!close;
      });
      if (!clicked) await page.keyboard.press('Escape');
    } else {
      quiet++;
    }
    await sleep(300);
  }
}

module.exports = {sleep, closeDialogs};
