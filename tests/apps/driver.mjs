// Drives the MCP Apps views in headless Chromium (Debian's), for tests/it/apps.rs:
//   node tests/apps/driver.mjs <scenario>
// with MCP_URL (a running `ivcap-mcp --http`), DATA (JSON the scenario needs), CHROMIUM and
// SHOTS (the screenshot folder). It speaks MCP over Streamable HTTP as a host that declared the
// Apps extension: makes a real tool call, reads the tool's view with resources/read, embeds it
// in tests/apps/host.html (which relays the view's own calls back here), and asserts what a
// person sees. Prints one JSON line of measurements; exits non-zero on the first failure.
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { join, dirname } from "node:path";

const scenario = process.argv[2];
const MCP_URL = process.env.MCP_URL;
const DATA = JSON.parse(process.env.DATA || "{}");
const SHOTS = process.env.SHOTS;
const here = dirname(fileURLToPath(import.meta.url));
// playwright-core is pinned in tools/clients (tools/clients/install.sh installs it).
const { chromium } = createRequire(join(here, "../../tools/clients/package.json"))("playwright-core");

// ---- MCP over Streamable HTTP ----
let nextId = 1;
let session = null;
async function rpc(method, params, notification = false) {
  const body = notification ? { jsonrpc: "2.0", method, params } : { jsonrpc: "2.0", id: nextId++, method, params };
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  if (session) headers["mcp-session-id"] = session;
  const res = await fetch(MCP_URL, { method: "POST", headers, body: JSON.stringify(body) });
  session = session || res.headers.get("mcp-session-id");
  if (notification) return null;
  const text = await res.text();
  const messages = (res.headers.get("content-type") || "").includes("text/event-stream")
    ? text.split(/\r?\n\r?\n/).map((e) => e.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n"))
      .filter((d) => d.trim()).map((d) => JSON.parse(d))
    : [JSON.parse(text)];
  const answer = messages.find((m) => m.id === body.id);
  if (!answer) throw new Error(`${method}: no answer in ${res.status} ${text.slice(0, 300)}`);
  if (answer.error) throw new Error(`${method}: ${answer.error.message}`);
  return answer.result;
}
async function connect() {
  const init = await rpc("initialize", {
    protocolVersion: "2025-06-18",
    capabilities: { extensions: { "io.modelcontextprotocol/ui": { mimeTypes: ["text/html;profile=mcp-app"] } } },
    clientInfo: { name: "ivcap-mcp-apps-test-host", version: "1" },
  });
  await rpc("notifications/initialized", {}, true);
  return init;
}
async function tool(name, args) {
  const r = await rpc("tools/call", { name, arguments: args });
  if (r.isError) throw new Error(`${name}: ${r.content.map((c) => c.text).join(" ")}`);
  return r;
}

// ---- Checks ----
function check(ok, what) { if (!ok) throw new Error("check failed: " + what); }
async function until(what, probe, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await probe(); if (last) return last; } catch (e) { last = e.message; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// ---- The browser ----
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
const failures = [];
const out = { scenario };
try {
  const context = await browser.newContext({ viewport: { width: 940, height: 700 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" || /Refused to|Content Security Policy/i.test(m.text())) failures.push("console: " + m.text());
  });
  page.on("pageerror", (e) => failures.push("page error: " + e.message));
  await page.exposeFunction("mcp", (method, params) => rpc(method, params));
  await page.goto("file://" + join(here, "host.html"));

  const init = await connect();
  check(init.capabilities.extensions?.["io.modelcontextprotocol/ui"]?.mimeTypes?.includes("text/html;profile=mcp-app"),
    "the server declares the Apps extension");
  const tools = (await rpc("tools/list", {})).tools;

  /// Calls `name`, reads its view and shows it in the host with `theme`; the view's frame.
  async function showTool(name, args, theme = "light") {
    const def = tools.find((t) => t.name === name);
    const uri = def?._meta?.ui?.resourceUri;
    check(uri, `${name} names a view`);
    const result = await rpc("tools/call", { name, arguments: args });
    const read = await rpc("resources/read", { uri });
    const view = read.contents[0];
    check(view.mimeType === "text/html;profile=mcp-app", `${uri} mimeType`);
    out.view = uri;
    out.html_bytes = Buffer.byteLength(view.text);
    await page.evaluate((p) => window.hostStart(p), { html: view.text, toolName: name, args, result, theme });
    const frame = await until("the view frame", async () => page.frames().find((f) => f !== page.mainFrame()));
    await until("the view painted", () => frame.evaluate(() => document.documentElement.dataset.paintedAt));
    const [posted, painted] = await Promise.all([
      page.evaluate(() => window.host.resultPostedAt),
      frame.evaluate(() => Number(document.documentElement.dataset.paintedAt)),
    ]);
    out.result_to_paint_ms = Math.round((painted - posted) * 10) / 10;
    return { frame, result };
  }
  const text = (frame, selector) => frame.locator(selector).first().innerText();
  const count = (frame, selector) => frame.locator(selector).count();
  async function shot(name) {
    mkdirSync(SHOTS, { recursive: true });
    await until("the host sized the view", () => page.evaluate(() => window.host.size !== null));
    await page.waitForTimeout(100);
    await page.locator("#view").screenshot({ path: join(SHOTS, name + ".png") });
  }

  const scenarios = {
    // A stand-in job that runs for a few seconds: the view follows it through get_job.
    async job() {
      const { frame } = await showTool("submit_job", { service: DATA.service, input: { message: "hi" }, wait_seconds: 0 });
      const seen = [];
      await until("the job to succeed in the view", async () => {
        const s = await frame.locator("#status").getAttribute("data-status");
        if (s && seen[seen.length - 1] !== s) seen.push(s);
        return s === "succeeded";
      }, 30000);
      out.states_seen = seen;
      check(seen.length >= 3 && seen[0] !== "executing", `the view showed the states advancing: ${seen}`);
      check(seen.indexOf("executing") > 0, `executing came after an earlier state: ${seen}`);
      check(await count(frame, ".timeline li.done") === 4, "every step of the timeline is done");
      check((await text(frame, "#products")).includes(DATA.product), "the product is listed");
      await shot("job");
      await frame.locator("#products button").first().click();
      await until("the product in the artifact view", async () => (await count(frame, "#rowcount")) === 1);
    },
    async job_failed() {
      const { frame } = await showTool("get_job", { job_id: DATA.job });
      check((await text(frame, "#error")).includes(DATA.message), "the error message is shown");
      check(await frame.locator("#status").getAttribute("data-status") === "failed", "status failed");
      check(await count(frame, ".timeline li.bad") === 1, "the final step is marked failed");
    },
    async csv() {
      const { frame } = await showTool("get_artifact", { artifact_id: DATA.artifact });
      await until("the table", async () => (await count(frame, "#rowcount")) === 1);
      check((await text(frame, "#rowcount")) === "250 rows (first 200 shown)", "the row count");
      check(await count(frame, ".scroll tbody tr") === 200, "200 rows shown");
      check((await text(frame, ".scroll tbody tr td")) === "1", "first cell");
      const header = frame.locator(".scroll th").nth(1);
      await header.click();
      await header.click();
      check((await text(frame, ".scroll tbody tr td:nth-child(2)")) === "199.5", "sorted descending by value");
      check((await text(frame, "#aspects")).includes("urn:example:schema:label.1"), "its aspect is listed");
      await shot("artifact");
    },
    async image() {
      const { frame } = await showTool("download_artifact", { artifact_id: DATA.artifact }, "dark");
      const img = frame.locator("#preview-image");
      await until("the image loaded", () => img.evaluate((i) => i.complete && i.naturalWidth > 0));
      out.image_px = await img.evaluate((i) => [i.naturalWidth, i.naturalHeight]);
      const bg = await frame.evaluate(() => getComputedStyle(document.body).backgroundColor);
      check(bg === "rgb(23, 24, 26)", "dark theme background, got " + bg);
      check((await text(frame, "#aspects")).includes("No aspects"), "says plainly there are no aspects");
      await shot("artifact-image");
    },
    async provenance() {
      const { frame } = await showTool("list_aspects", { entity: DATA.output, include_content: true });
      const nodes = (kind) => count(frame, `g.node[data-kind="${kind}"]`);
      await until("the graph", async () => (await nodes("service")) === 1);
      check(await nodes("job") === 1, "the producing job");
      check(await nodes("artifact") === 2, "this output and the job's other output");
      check(await frame.locator(`g.node[data-id="${DATA.service}"]`).count() === 1, "the job's service");
      const before = await count(frame, "g.node");
      out.nodes_before = before;
      await frame.locator(`g.node[data-id="${DATA.other}"]`).click();
      await until("a new node after the click", async () => (await count(frame, "g.node")) > before);
      check((await frame.locator("svg.graph").textContent()).includes("quality.1"), "the other output's aspect appeared");
      out.nodes_after = await count(frame, "g.node");
      await shot("provenance");
    },
    async collection() {
      const { frame } = await showTool("get_collection", { collection: DATA.collection, limit: 4 });
      await until("the members", async () => (await count(frame, "#members tbody tr")) === 4);
      const page1 = await frame.locator("#members tbody tr td:first-child").allInnerTexts();
      check(page1.join() === DATA.names.slice(0, 4).join(), "page 1 names: " + page1);
      check((await text(frame, "#members")).includes("text/csv"), "types shown");
      await shot("collection");
      await frame.locator("#next").click();
      await until("page 2", async () => (await text(frame, "#page")) === "page 2");
      const page2 = await frame.locator("#members tbody tr td:first-child").allInnerTexts();
      check(page2.join() === DATA.names.slice(4).join(), "page 2 names: " + page2);
      check(await frame.locator("#next").isDisabled(), "no page 3");
      await frame.locator("#prev").click();
      await until("page 1 again", async () => (await text(frame, "#page")) === "page 1");
    },
  };
  const run = scenarios[scenario];
  if (!run) throw new Error("no scenario " + scenario);
  await run();
} catch (e) {
  failures.push(e.stack || String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
