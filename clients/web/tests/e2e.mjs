// End-to-end test of the page in headless Chromium, driven by playwright-core. Run by
// server/app/tests/web.rs against a real server; also usable by hand:
//
//   PROSODIA_WEB_URL=http://127.0.0.1:8080/ PROSODIA_CHROMIUM=/usr/bin/chromium \
//   PROSODIA_FIXTURE=../shared/fixtures/tess/OAF_back_angry.wav \
//   PROSODIA_BAD_FIXTURE=../shared/fixtures/bad/empty.wav node clients/web/tests/e2e.mjs
//
// Environment:
//   PROSODIA_WEB_URL        the page (required)
//   PROSODIA_CHROMIUM       the browser binary (required)
//   PROSODIA_FIXTURE        a good audio file to upload (required)
//   PROSODIA_BAD_FIXTURE    a file the server refuses (required)
//   PROSODIA_EXPECT_LABEL   the label the page must show for PROSODIA_FIXTURE (optional)
//   PROSODIA_EXPECT_WINDOWS the number of timeline windows for it (optional)
//   PROSODIA_EXPECT_ERROR   text the error for the bad file must contain (default INVALID_ARGUMENT)
//   PROSODIA_SCREENSHOT     where to save the screenshot of the result (optional); the error
//                           view goes beside it with "-error" added to the name
//   PROSODIA_MIC_FIXTURE    a WAV file Chromium's fake microphone plays; when set, the test
//                           also records from the "microphone" and classifies the recording
//
// Prints one line per check and exits 1 on the first failure.
import { chromium } from "playwright-core";

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    throw new Error(`${name} is not set`);
  }
  return v;
};

const url = env("PROSODIA_WEB_URL");
const executablePath = env("PROSODIA_CHROMIUM");
const fixture = env("PROSODIA_FIXTURE");
const bad = env("PROSODIA_BAD_FIXTURE");
const expectLabel = env("PROSODIA_EXPECT_LABEL", "");
const expectWindows = env("PROSODIA_EXPECT_WINDOWS", "");
const expectError = env("PROSODIA_EXPECT_ERROR", "INVALID_ARGUMENT");
const screenshot = env("PROSODIA_SCREENSHOT", "");
const mic = env("PROSODIA_MIC_FIXTURE", "");
const LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
const TIMEOUT_MS = 60_000;

function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  console.log(`ok - ${what}`);
}

/** Per chart canvas: what it shows (data-chart) and its share of non-background pixels. */
async function charts(page) {
  return page.evaluate(() =>
    ["waveform", "mel", "timeline"].map((id) => {
      const c = document.getElementById(id);
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let ink = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] !== 255 || d[i + 1] !== 255 || d[i + 2] !== 255) ink++;
      }
      return { id, chart: c.dataset.chart, windows: c.dataset.windows, ink: ink / (d.length / 4) };
    }),
  );
}

/**
 * Chooses `file` in the page's file input. The status is first marked `pending` (a state the
 * page never sets), so that `settle` waits for this file's outcome: without it, a check that
 * ran before the page had switched to `busy` saw the previous file's `done` and went on.
 */
async function choose(page, file) {
  await page.evaluate(() => {
    document.getElementById("status").dataset.state = "pending";
  });
  await page.locator("#file").setInputFiles(file);
}

/** Waits for the page to finish (done or error) and returns the state. */
async function settle(page) {
  await page.waitForFunction(
    () => ["done", "error"].includes(document.getElementById("status").dataset.state),
    undefined,
    { timeout: TIMEOUT_MS },
  );
  return page.locator("#status").getAttribute("data-state");
}

// The flags beyond the fake media devices keep Chromium quiet and steady on a CI machine:
// no GPU process, no shared-memory size limit, no background connections to a closed network.
const args = [
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
if (mic) args.push(`--use-file-for-fake-audio-capture=${mic}`);
const browser = await chromium.launch({ executablePath, headless: true, args });
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));

  await page.goto(url);
  check((await page.title()).includes("Prosodia"), `the page loads from ${url}`);
  check((await page.locator("#status").getAttribute("data-state")) === "idle", "the page starts idle");

  // A good file: the label, the bars, the three charts.
  await choose(page, fixture);
  const state = await settle(page);
  const errorText = await page.locator("#error").textContent();
  check(state === "done", `the page shows a result for ${fixture} (state ${state}; error: ${errorText})`);
  const label = (await page.locator("#label").textContent()).trim();
  check(LABELS.includes(label), `the label is one of the six classes (${label})`);
  if (expectLabel) check(label === expectLabel, `the label equals Classify's (${label} = ${expectLabel})`);
  const bars = await page.locator("#scores li").count();
  check(bars === LABELS.length, `a confidence bar per class (${bars})`);
  const best = await page.locator("#scores li.best").getAttribute("data-label");
  check(best === label, `the highlighted bar is the label (${best})`);
  const drawn = await charts(page);
  const minInk = { waveform: 0.02, mel: 0.9, timeline: 0.2 };
  for (const c of drawn) {
    check(c.chart === "drawn" && c.ink >= minInk[c.id], `the ${c.id} chart rendered (${(100 * c.ink).toFixed(1)} % of its pixels drawn)`);
  }
  const windows = drawn.find((c) => c.id === "timeline").windows;
  if (expectWindows) check(windows === expectWindows, `the timeline has Classify's ${expectWindows} windows (${windows})`);
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);
  }

  // A bad file: the server's status is shown, the old result is hidden.
  await choose(page, bad);
  const badState = await settle(page);
  check(badState === "error", `the page reports an error for ${bad} (state ${badState})`);
  const message = (await page.locator("#error").textContent()).trim();
  check(await page.locator("#error").isVisible(), "the error message is visible");
  check(message.includes(expectError) && message.length > expectError.length + 5, `the error names the problem: ${message}`);
  check(!(await page.locator("#result").isVisible()), "the previous result is hidden");
  if (screenshot) await page.screenshot({ path: screenshot.replace(/(\.png)?$/, "-error.png"), fullPage: true });

  // The microphone, fed by Chromium's fake capture device.
  if (mic) {
    await page.locator("#record").click();
    await page.waitForFunction(() => document.getElementById("status").dataset.state === "busy", undefined, { timeout: TIMEOUT_MS });
    await page.waitForTimeout(3000);
    await page.locator("#record").click();
    const micState = await settle(page);
    const micError = await page.locator("#error").textContent();
    check(micState === "done", `a microphone recording is classified (state ${micState}; error: ${micError})`);
    const micLabel = (await page.locator("#label").textContent()).trim();
    const details = await page.locator("#details").textContent();
    check(LABELS.includes(micLabel) && details.includes("the recording"), `the recording got a label (${micLabel}): ${details}`);
  }

  check(problems.length === 0, `no page or console errors${problems.length ? `: ${problems.join("; ")}` : ""}`);
} catch (e) {
  failed = true;
  console.log(e.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
