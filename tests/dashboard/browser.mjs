// Opens the wasmtel dashboard in headless chromium and answers commands on
// stdin, one per line, so a test can watch the same live page while it
// drives the service:
//   figures      -> one line of JSON: every [data-testid] element's text
//                   (repeated ids become arrays), plus "error" (the page's alert)
//   shot <path>  -> a full-page PNG screenshot; answers "ok"
//   quit         -> closes the browser
// Usage: node browser.mjs <url>   (CHROMIUM overrides /usr/bin/chromium)
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const url = process.argv[2];
if (!url) {
  console.error("usage: node browser.mjs <url>");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // As root in a container; no background traffic on a closed network.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => { if (message.type() === "error") problems.push(`console: ${message.text()}`); });
page.on("dialog", (dialog) => { problems.push(`dialog opened: ${dialog.message()}`); dialog.dismiss(); });
await page.goto(url);
console.log("ready");

for await (const line of createInterface({ input: process.stdin })) {
  const [command, ...rest] = line.trim().split(" ");
  if (command === "figures") {
    const figures = await page.evaluate(() => {
      const out = {};
      for (const node of document.querySelectorAll("[data-testid]")) {
        const id = node.getAttribute("data-testid");
        const text = node.textContent;
        if (id in out) out[id] = [].concat(out[id], text);
        else out[id] = text;
      }
      out.error = document.getElementById("error")?.textContent ?? "";
      out.injected = document.querySelectorAll("img, iframe, object").length;
      return out;
    });
    figures.problems = problems;
    console.log(JSON.stringify(figures));
  } else if (command === "shot") {
    await page.screenshot({ path: rest.join(" "), fullPage: true });
    console.log("ok");
  } else if (command === "quit") {
    break;
  } else {
    console.log(JSON.stringify({ unknown: command }));
  }
}
await browser.close();
