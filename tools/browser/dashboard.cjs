// Drives Theory's dashboard in headless Chromium as a person would: signs in with a token,
// submits a mock run from the form and watches its tokens arrive, previews its outputs, cancels
// a live run, watches a plan's bar move after a real run, fails to see another tenant's run,
// and checks the page asks nothing of any other host, labels every control and fits a phone.
// Prints one line per check; exits 1 at the first that does not hold.
//
// Usage: node dashboard.cjs NODE_MODULES_DIR CHROMIUM, with
//   THEORY_UI_URL          the server (http://127.0.0.1:PORT)
//   THEORY_UI_TOKEN        a token bound to the plan THEORY_UI_PLAN
//   THEORY_UI_PLAN         that plan's key
//   THEORY_UI_OTHER_RUN    a run another tenant made (must stay invisible)
//   THEORY_UI_RETRIED_RUN  a run of the token's whose processor crashes (it is tried again)
//   THEORY_UI_SCREENSHOTS  optional: a folder for a PNG of each page
const path = require("node:path");
const fs = require("node:fs");

const [modules, executable] = process.argv.slice(2);
if (!modules || !executable) {
  console.error("usage: node dashboard.cjs NODE_MODULES_DIR CHROMIUM");
  process.exit(2);
}
const { chromium } = require(path.join(modules, "playwright-core"));
const need = (name) => process.env[name] ?? (console.error(`${name} is not set`), process.exit(2));
const base = need("THEORY_UI_URL");
const token = need("THEORY_UI_TOKEN");
const plan = need("THEORY_UI_PLAN");
const otherRun = need("THEORY_UI_OTHER_RUN");
const retriedRun = need("THEORY_UI_RETRIED_RUN");
const shots = process.env.THEORY_UI_SCREENSHOTS;

function check(what, holds, detail = "") {
  if (!holds) throw new Error(`${what}${detail ? `: ${detail}` : ""}`);
  console.log(`ok: ${what}`);
}

async function shot(page, name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** Submits the new-run form for the probe; returns the run's id once its page opened. */
async function submit(page, { text, sleepMs, real = false, raw }) {
  await page.goto(`${base}/#/new?ref=theory/probe@1`);
  await page.waitForSelector("#in-text");
  if (raw) {
    await page.check("#use-raw");
    await page.fill("#raw", JSON.stringify(raw));
  } else {
    await page.fill("#in-text", text);
    if (sleepMs !== undefined) await page.fill("#in-sleep_ms", String(sleepMs));
  }
  if (real) await page.check("#real");
  await page.click("button[type=submit]");
  await page.waitForURL(/#\/runs\/[0-9A-Z]{26}$/);
  return page.url().split("/").pop();
}

/** A 1×1 PNG. */
const DOT_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/** What the page shows, for a failure's message. */
let shown = async () => "";

async function main() {
  const browser = await chromium.launch({
    executablePath: executable,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
  });
  const elsewhere = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // Anything asked of another host is recorded and refused: the page must need none.
    const origin = new URL(base).origin;
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("blob:") || url.startsWith("data:") || new URL(url).origin === origin) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error.message));
    // A load the page's Content-Security-Policy refused never reaches the route above: the
    // browser says so on the console.
    page.on("console", (message) => {
      if (message.type() === "error" && /Content Security Policy/i.test(message.text())) elsewhere.push(message.text());
    });
    shown = async () => `${page.url()}\n${(await page.textContent("main").catch(() => "")).slice(0, 2000)}\nscript errors: ${errors.join("; ") || "none"}`;

    // Sign in: the server asks for a token.
    await page.goto(base);
    await page.waitForSelector("#token");
    check("the server asks for a token before showing anything", (await page.textContent("h1")) === "Sign in");
    await shot(page, "sign-in");
    await page.fill("#token", token);
    await page.press("#token", "Enter");
    await page.waitForSelector("table[aria-label=Runs]");
    check("signed in, the runs list shows", true);

    // A mock run from the form: its tokens arrive while it runs, then it succeeds.
    const words = "alpha beta gamma delta";
    // It sleeps after its tokens: they must show while the run is still going.
    await submit(page, { text: words, sleepMs: 3000 });
    await page.waitForFunction((expected) => document.querySelector("pre.tokens")?.textContent === expected, words, { timeout: 10000 });
    const during = await page.textContent("h1 .badge");
    check("the tokens appear while the run is still going", during === "running", `status ${during}`);
    await page.waitForFunction(() => document.querySelector("h1 .badge")?.textContent === "succeeded", null, { timeout: 15000 });
    check("the run page follows the run to its end", true);
    await page.waitForSelector("[data-verify]");
    check("every output verifies against its CID", (await page.getAttribute("[data-verify]", "data-verify")) === "ok");
    await page.click("button[aria-label^='Preview '][aria-label$='/echo.txt']");
    await page.waitForSelector(".output pre");
    check("a text output previews as text", (await page.textContent(".output pre")).includes("alpha"));
    await page.click("button[aria-label^='Preview '][aria-label$='/meta.json']");
    await page.waitForFunction(() => [...document.querySelectorAll(".output pre")].some((pre) => pre.textContent.includes('\n  "')));
    check("a JSON output previews pretty-printed", true);
    const receiptFields = await page.$$eval("dl.fields dt", (terms) => terms.map((term) => term.textContent));
    check("the receipt shows memo_key and inputs_hash with what they mean", receiptFields.includes("memo_key") && receiptFields.includes("inputs_hash"), receiptFields.join(","));
    await shot(page, "run");

    // A file field: image/thumbnail@1's image, uploaded and attached from the form; its output
    // (a PNG) shows inline.
    await page.goto(`${base}/#/new?ref=image/thumbnail@1`);
    await page.waitForSelector("#in-image[type=file]");
    await page.setInputFiles("#in-image", { name: "dot.png", mimeType: "image/png", buffer: Buffer.from(DOT_PNG, "base64") });
    await page.click("button[type=submit]");
    await page.waitForURL(/#\/runs\/[0-9A-Z]{26}$/);
    await page.waitForFunction(() => document.querySelector("h1 .badge")?.textContent === "succeeded", null, { timeout: 15000 });
    await page.click("button[aria-label^='Preview '][aria-label$='/thumbnail.png']");
    await page.waitForFunction(() => { const image = document.querySelector(".output img"); return image?.complete && image.naturalWidth > 0; });
    await page.click("button[aria-label^='Preview '][aria-label$='/dimensions.json']");
    await page.waitForFunction(() => [...document.querySelectorAll(".output pre")].some((pre) => pre.textContent.includes("b3:")));
    check("a file field is uploaded and attached, and an image output shows inline", true);
    await shot(page, "run-image");

    // Cancel a live run from the list.
    const live = await submit(page, { text: "wait", sleepMs: 60000 });
    await page.goto(`${base}/#/runs`);
    const cancel = `button[aria-label='Cancel run ${live}']`;
    await page.waitForSelector(cancel, { timeout: 10000 });
    await shot(page, "runs");
    await page.click(cancel);
    await page.waitForFunction((run) => document.querySelector(`tr[data-run="${run}"] .badge`)?.textContent === "cancelled", live, { timeout: 15000 });
    check("a live run is cancelled from the list", true);

    // A real run charged to the plan moves its bar.
    await page.goto(`${base}/#/plans`);
    const bar = `[data-plan="${plan}"] .bar`;
    await page.waitForSelector(bar);
    const before = Number(await page.getAttribute(bar, "data-spent"));
    await submit(page, { real: true, raw: { text: "charged", usage: { cost_usd_micro: 250000 } } });
    await page.waitForFunction(() => document.querySelector("h1 .badge")?.textContent === "succeeded", null, { timeout: 15000 });
    await page.goto(`${base}/#/plans`);
    await page.waitForFunction(([selector, was]) => Number(document.querySelector(selector)?.dataset.spent) > was, [bar, before], { timeout: 10000 });
    const after = Number(await page.getAttribute(bar, "data-spent"));
    check(`the plan's bar moved (spent ${before} → ${after} µ$)`, after === before + 250000);
    check("the ledger's check is the operator's, not shown to a tenant's token", (await page.getAttribute("[data-ledger]", "data-ledger")) === "operators-only");
    await shot(page, "plans");

    // A run tried again: its page says which attempt failed and why.
    await page.goto(`${base}/#/runs/${retriedRun}`);
    const failedAttempt = "li[data-kind='execution.attempt_failed']";
    await page.waitForSelector(failedAttempt, { timeout: 15000 });
    const why = await page.textContent(failedAttempt);
    check("a retried run's timeline says which attempt failed and why", why.includes("attempt 1 failed") && why.includes("ERR_") && why.includes("tried again"), why);

    // Another tenant's run: not listed, and not shown when asked for by id.
    await page.goto(`${base}/#/runs`);
    await page.waitForSelector("table[aria-label=Runs] tbody tr");
    check("another tenant's run is not in the list", !(await page.$(`tr[data-run="${otherRun}"]`)));
    await page.goto(`${base}/#/runs/${otherRun}`);
    await page.waitForSelector("[role=alert]");
    const refused = await page.textContent("[role=alert]");
    check("another tenant's run is not shown by its id", refused.includes(`there is no run ${otherRun}`), refused);
    const answers = await page.evaluate(async ([run, secret]) => Promise.all(
      ["", "/events", "/ledger", "/verify", "/receipt"].map((tail) => fetch(`/v1/runs/${run}${tail}`, { headers: { authorization: `Bearer ${secret}` } }).then((answer) => answer.status))),
    [otherRun, token]);
    check(`nor through any of its routes (${answers.join(", ")})`, answers.every((status) => status === 404));

    // The processors page: the registry, secrets named only.
    await page.goto(`${base}/#/processors`);
    await page.waitForSelector("section[aria-label='theory/probe@1']");
    const probe = await page.textContent("section[aria-label='theory/probe@1']");
    check("the processors page names secrets and renders the input schema", probe.includes("THEORY_PROBE_SECRET") && probe.includes("sleep_ms"));
    await shot(page, "processors");

    // Every control of the form is labelled.
    await page.goto(`${base}/#/new?ref=theory/probe@1`);
    await page.waitForSelector("#in-text");
    const unlabelled = await page.$$eval("input, select, textarea, button", (controls) => controls
      .filter((control) => !control.labels?.length && !control.getAttribute("aria-label") && !control.textContent.trim())
      .map((control) => control.id || control.name || control.outerHTML.slice(0, 60)));
    check("every control of the new-run form has a label", unlabelled.length === 0, unlabelled.join(", "));
    await shot(page, "new-run");

    // A phone's width: nothing wider than the screen but the runs table's own scroller.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/#/runs`);
    await page.waitForSelector("table[aria-label=Runs] tbody tr");
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(`the runs page fits a phone (${width} px wide at 390)`, width <= 390);
    await shot(page, "runs-phone");

    check("no request left this server", elsewhere.length === 0, elsewhere.join(", "));
    check("no script error on any page", errors.length === 0, errors.join("; "));
  } catch (error) {
    error.message += `\nthe page: ${await shown()}`;
    throw error;
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
