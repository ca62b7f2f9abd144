// Theory's dashboard: a page per hash route, built from the public /v1 API with the caller's
// token, so it shows exactly what an application with that token may see. Nothing is fetched
// from anywhere but this server, and no text from a run is ever parsed as HTML.

const TOKEN_KEY = "theory.token";
const LIVE = new Set(["queued", "starting", "running"]);
const PAGE_SIZE = 50;
const main = document.getElementById("main");
/**
 * The page on screen (or being drawn): what it shows and what it stops when another opens. A
 * page still loading when the user moved on draws nothing and starts nothing.
 */
class View {
  constructor() {
    this.alive = true;
    this.stops = [];
  }

  show(...nodes) {
    if (this.alive) fill(main, ...nodes);
  }

  /** Registers what to stop when the page closes (at once if it has already). */
  on(stop) {
    if (this.alive) this.stops.push(stop);
    else stop();
  }

  close() {
    this.alive = false;
    for (const stop of this.stops.splice(0)) stop();
  }
}
let view = null;

// ---- small helpers -------------------------------------------------------------------------

/** An element with attributes (`on…` are listeners) and children (strings become text). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replaces an element's children; absent ones (null, undefined, false) are left out. */
function fill(element, ...nodes) {
  element.replaceChildren(...nodes.flat().filter((node) => node !== null && node !== undefined && node !== false));
}

function show(...nodes) {
  fill(main, ...nodes);
}

const dollars = (micro) => (micro === null || micro === undefined ? "—" : `$${(micro / 1e6).toFixed(micro % 10000 ? 6 : 2)}`);
const duration = (ms) => (ms === null || ms === undefined ? "—" : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);
const bytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
/** What a run's verification says of its attestation. */
const signature = (verify) => (verify.attestation === "verified" ? `; its attestation, signed by ${verify.key_id}, verifies`
  : verify.attestation === "unsigned" ? "; the run is unsigned" : "");

function age(iso) {
  if (!iso) return "—";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

const badge = (status) => h("span", { class: `badge s-${status}` }, status);

function failure(error) {
  return h("div", { class: "card", role: "alert" },
    h("p", { class: "error" }, `error: ${error.message}`),
    error.hint ? h("p", { class: "hint" }, `hint: ${error.hint}`) : null);
}

// ---- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, hint, code) {
    super(message);
    Object.assign(this, { status, hint, code });
  }
}

function headers(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (response.status === 401) {
    // Whatever the page had running stops: the sign-in form stays as the user types.
    view?.close();
    signIn("This server asks for an API token.");
    throw new ApiError(401, "sign in to see this", "paste a token made with `theory token create`");
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = body?.error ?? {};
    throw new ApiError(response.status, error.message ?? `${response.status} ${response.statusText}`, error.hint, error.code);
  }
  return body;
}

/**
 * Follows a run's Server-Sent Events (fetch, so the token goes in a header) until `end`; a
 * stream cut short (a restart, a proxy) is picked up again after the last frame seen.
 */
function follow(id, onFrame, onEnd) {
  const controller = new AbortController();
  let after = 0;
  let ended = false;
  const once = async () => {
    const response = await fetch(`/v1/runs/${encodeURIComponent(id)}/events?after=${after}`, {
      headers: headers({ accept: "text/event-stream" }),
      signal: controller.signal,
    });
    if (!response.ok || !response.body) throw new ApiError(response.status, `the run's events answered ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        let seq = null;
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("id:")) seq = Number(line.slice(3).trim());
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;
        const payload = JSON.parse(data.join("\n"));
        if (event === "end") {
          ended = true;
          onEnd(payload);
          return;
        }
        if (seq !== null) after = seq;
        onFrame(event, payload);
      }
    }
  };
  (async () => {
    while (!ended && !controller.signal.aborted) {
      try {
        await once();
      } catch (error) {
        if (error.name === "AbortError") return;
        if (error.status === 404 || error.status === 401) return;
      }
      if (!ended) await new Promise((resume) => setTimeout(resume, 1000));
    }
  })();
  return () => controller.abort();
}

// ---- sign-in -------------------------------------------------------------------------------

function signIn(reason) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
  show(h("h1", {}, "Sign in"),
    h("form", {
      class: "card", onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        renderWho();
        route();
      },
    },
    h("p", {}, reason),
    h("label", { for: "token" }, "API token", input),
    h("p", { id: "token-help", class: "help muted" }, "Kept in this tab only (session storage); sent as Authorization: Bearer."),
    h("button", { type: "submit" }, "Sign in")));
  input.focus();
}

function renderWho() {
  const who = document.getElementById("who");
  if (sessionStorage.getItem(TOKEN_KEY)) {
    fill(who, "signed in with a token",
      h("button", { class: "secondary", type: "button", onclick: () => { sessionStorage.removeItem(TOKEN_KEY); renderWho(); route(); } }, "Sign out"));
  } else {
    fill(who, h("a", { href: "#/sign-in" }, "Sign in"));
  }
}

// ---- runs ----------------------------------------------------------------------------------

async function runsPage(params, page) {
  const filters = { status: params.get("status") ?? "", ref: params.get("ref") ?? "", plan: params.get("plan") ?? "" };
  const cursor = params.get("cursor");
  const [processors, plans] = await Promise.all([
    api("/v1/processors").then((body) => body.processors).catch(() => []),
    api("/v1/plans").then((body) => body.plans).catch(() => []),
  ]);
  const select = (name, label, options) => h("label", { for: `f-${name}` }, label,
    h("select", { id: `f-${name}`, name }, h("option", { value: "" }, "any"),
      options.map((option) => h("option", { value: option, selected: option === filters[name] }, option))));
  const form = h("form", {
    class: "filters", onsubmit: (event) => {
      event.preventDefault();
      const query = new URLSearchParams();
      for (const [name, value] of new FormData(form)) if (value) query.set(name, value);
      location.hash = `#/runs?${query}`;
    },
  },
  select("status", "Status", ["queued", "starting", "running", "succeeded", "failed", "cancelled"]),
  select("ref", "Processor", processors.map((processor) => processor.ref)),
  select("plan", "Plan", plans.map((plan) => plan.key)),
  h("button", { type: "submit" }, "Filter"));
  const body = h("tbody");
  const pager = h("div", { class: "pager" });
  const table = h("div", { class: "table-wrap" }, h("table", { "aria-label": "Runs" },
    h("thead", {}, h("tr", {}, ["Status", "Run", "Processor", "Mode", "Adapter", "Runtime", "Plan", "Cost", "Duration", "Cached", "Age", ""]
      .map((title, index) => h("th", { scope: "col", class: index === 1 || index === 4 || index === 5 ? "hide-narrow" : null }, title)))),
    body));
  page.show(h("h1", {}, "Runs"), form, table, pager);

  const refresh = async () => {
    const query = new URLSearchParams({ limit: PAGE_SIZE });
    for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
    if (cursor) query.set("cursor", cursor);
    const page = await api(`/v1/runs?${query}`);
    fill(body, ...page.runs.map(runRow));
    if (!page.runs.length) body.append(h("tr", {}, h("td", { colspan: 12, class: "muted" }, "No runs yet.")));
    fill(pager, 
      cursor ? h("a", { href: `#/runs?${new URLSearchParams({ ...filters })}` }, "← Newest") : null,
      page.next_cursor ? h("a", { href: `#/runs?${new URLSearchParams({ ...filters, cursor: page.next_cursor })}` }, "Older →") : null);
  };
  await refresh();
  // Live: the first page is looked at again every two seconds while it is open.
  if (!cursor) {
    const timer = setInterval(() => refresh().catch(() => {}), 2000);
    page.on(() => clearInterval(timer));
  }
}

function runRow(run) {
  const cancel = LIVE.has(run.status)
    ? h("button", { class: "danger", type: "button", "aria-label": `Cancel run ${run.id}`, onclick: (event) => cancelRun(run.id, event.target) }, "Cancel")
    : null;
  return h("tr", { "data-run": run.id },
    h("td", {}, badge(run.status)),
    h("td", { class: "mono hide-narrow" }, h("a", { href: `#/runs/${run.id}` }, run.id)),
    h("td", {}, h("a", { href: `#/runs/${run.id}`, "aria-label": `Run ${run.id} of ${run.ref}` }, run.ref ?? "—")),
    h("td", {}, run.mode),
    h("td", { class: "hide-narrow" }, run.adapter),
    h("td", { class: "hide-narrow" }, run.runtime ?? "—"),
    h("td", {}, run.plan ?? "—"),
    h("td", {}, dollars(run.cost_usd_micro)),
    h("td", {}, duration(run.duration_ms)),
    h("td", {}, run.cached === null || run.cached === undefined ? "—" : run.cached ? "yes" : "no"),
    h("td", { title: run.created_at ?? "" }, age(run.created_at)),
    h("td", {}, cancel));
}

async function cancelRun(id, button) {
  button.disabled = true;
  try {
    await api(`/v1/runs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    button.textContent = "Cancelling…";
  } catch (error) {
    button.disabled = false;
    button.after(h("span", { class: "error" }, ` ${error.message}`));
  }
}

// ---- one run -------------------------------------------------------------------------------

async function runPage(id, page) {
  const run = await api(`/v1/runs/${encodeURIComponent(id)}`);
  const status = h("span", {}, badge(run.status));
  const timeline = h("ul", { class: "timeline", "aria-label": "Timeline" });
  const tokens = h("pre", { class: "tokens", "aria-label": "Tokens", "aria-live": "polite" });
  const logs = h("pre", { "aria-label": "Logs" });
  const events = h("ul", { class: "muted" });
  const outputs = h("div");
  const receipt = h("div");
  const ledger = h("ol", { class: "ledger", "aria-label": "Ledger entries" });
  const cancelArea = h("div", { class: "row" });
  const facts = h("dl", { class: "fields" });
  const drawFacts = (current) => fill(facts,
    h("dt", {}, "Processor"), h("dd", {}, current.ref ?? "—"),
    h("dt", {}, "Mode"), h("dd", {}, current.mode),
    h("dt", {}, "Adapter / runtime"), h("dd", {}, `${current.adapter} / ${current.runtime ?? "—"}`),
    h("dt", {}, "Plan"), h("dd", {}, current.plan ?? "—"),
    h("dt", {}, "Cost"), h("dd", {}, dollars(current.cost_usd_micro)),
    h("dt", {}, "Duration"), h("dd", {}, duration(current.duration_ms)),
    h("dt", {}, "Cached"), h("dd", {}, current.cached ? "yes: outputs of an earlier run with the same memo key" : current.cached === false ? "no" : "—"));
  drawFacts(run);
  page.show(h("h1", {}, "Run ", h("span", { class: "mono" }, id), " ", status),
    h("div", { class: "card" },
      facts,
      h("h2", {}, "Timeline"), timeline, events, cancelArea,
      h("h2", {}, "In the ledger"), ledger),
    h("h2", {}, "Tokens"), tokens,
    h("h2", {}, "Logs"), logs,
    h("h2", {}, "Outputs"), outputs,
    h("h2", {}, "Receipt"), receipt);

  const drawTimeline = (current) => {
    const steps = [["queued", current.created_at], ["started", current.started_at], ["completed", current.completed_at]];
    fill(timeline, ...steps.map(([name, at]) => h("li", { class: at ? "done" : null }, `${name}${at ? ` ${new Date(at).toLocaleTimeString()}` : ""}`)),
      current.attempts > 1 ? h("li", { class: "done" }, `${current.attempts} attempts`) : null);
    fill(cancelArea, LIVE.has(current.status)
      ? h("button", { class: "danger", type: "button", onclick: (event) => cancelRun(id, event.target) }, "Cancel this run") : "");
  };
  const drawLedger = async () => {
    try {
      const { entries } = await api(`/v1/runs/${encodeURIComponent(id)}/ledger`);
      fill(ledger, entries.map((entry) => h("li", { "data-kind": entry.kind },
        h("span", { class: "mono" }, `#${entry.seq} `), ledgerLine(entry),
        h("span", { class: "muted" }, ` · ${new Date(entry.at_ms).toLocaleTimeString()}`))));
    } catch (error) {
      fill(ledger, h("li", { class: "error" }, error.message));
    }
  };
  let finished = false;
  const finish = (current) => {
    if (finished) return;
    finished = true;
    drawFacts(current);
    fill(status, badge(current.status));
    drawTimeline(current);
    drawOutputs(current, outputs);
    drawReceipt(current, receipt);
    drawLedger();
  };
  drawTimeline(run);
  drawLedger();
  // A finished run's stream replays its frames and ends at once.
  const stop = follow(id, (kind, frame) => {
    const content = frame.content ?? frame;
    if (kind === "Token") tokens.append(content.text ?? "");
    else if (kind === "Log") logs.append(`${content.level ?? "info"} ${content.msg ?? ""}\n`);
    else if (kind === "Event") {
      const detail = Object.entries(content).filter(([name]) => name !== "phase").map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(" ");
      events.append(h("li", {}, `${content.phase}${detail ? ` (${detail})` : ""}`));
      drawLedger();
      if (content.phase === "started") fill(status, badge("running"));
    }
  }, finish);
  page.on(stop);
  if (!LIVE.has(run.status)) finish(run);
}

/** One ledger entry of a run in words: a failed attempt says why the run was tried again. */
function ledgerLine(entry) {
  const body = entry.body ?? {};
  switch (entry.kind) {
    case "execution.started": return "started";
    case "execution.attempt_failed": return `attempt ${body.attempt} failed (${body.code}: ${body.message}); tried again`;
    case "plan.reserved": return `reserved ${dollars(body.amount_usd_micro)} on plan ${body.plan ?? ""}`;
    case "plan.settled": return `charged ${dollars(body.charged_usd_micro)} to plan ${body.plan ?? ""}`;
    case "execution.finished": return `finished: ${body.status ?? ""}${body.error_code ? ` (${body.error_code})` : ""}`;
    default: return entry.kind;
  }
}

function drawOutputs(run, into) {
  const envelope = run.envelope;
  if (!envelope) { fill(into, h("p", { class: "muted" }, "None yet.")); return; }
  if (envelope.status === "error") {
    const error = envelope.error ?? {};
    fill(into, h("div", { class: "card", role: "alert" },
      h("p", { class: "error" }, `${error.code ?? "error"}: ${error.message ?? ""}`),
      error.hint ? h("p", { class: "hint" }, `hint: ${error.hint}`) : null));
    return;
  }
  const list = (envelope.outputs ?? []).map((output) => {
    const preview = h("div", { class: "preview" });
    const card = h("div", { class: "card output" },
      h("div", { class: "row" }, h("strong", {}, output.path),
        h("span", { class: "muted" }, `${output.mime} · ${bytes(output.size_bytes)}`),
        h("button", { class: "secondary", type: "button", "aria-label": `Download ${output.path}`, onclick: () => download(output).catch((error) => fill(preview, failure(error))) }, "Download"),
        h("button", { class: "secondary", type: "button", "aria-label": `Preview ${output.path}`, onclick: () => previewOutput(output, preview) }, "Preview")),
      h("div", { class: "mono muted" }, output.cid), preview);
    return card;
  });
  fill(into, ...(list.length ? list : [h("p", { class: "muted" }, "No outputs.")]));
}

const artifactUrl = (path) => `/v1/artifacts${path.split("/").map(encodeURIComponent).join("/")}`;

async function fetchArtifact(output) {
  const response = await fetch(artifactUrl(output.path), { headers: headers() });
  if (!response.ok) throw new ApiError(response.status, `${output.path}: ${response.status}`);
  return response;
}

async function previewOutput(output, into) {
  try {
    const response = await fetchArtifact(output);
    if (output.mime.startsWith("image/")) {
      const url = URL.createObjectURL(await response.blob());
      fill(into, h("img", { src: url, alt: `${output.path}, the output` }));
    } else if (output.mime.includes("json")) {
      const text = await response.text();
      let pretty = text;
      try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as it is */ }
      fill(into, h("pre", {}, pretty));
    } else if (output.mime.startsWith("text/")) {
      fill(into, h("pre", {}, (await response.text()).slice(0, 200000)));
    } else {
      fill(into, h("p", { class: "muted" }, "No preview for this type; download it."));
    }
  } catch (error) {
    fill(into, failure(error));
  }
}

async function download(output) {
  const response = await fetchArtifact(output);
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: output.path.split("/").pop() });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const RECEIPT_FIELDS = [
  ["image_digest", "The image that ran, by content digest: the pin resolved for this platform."],
  ["image_source", "Where that digest came from (the registry's pin, a local build)."],
  ["inputs_hash", "BLAKE3 of the inputs in canonical JSON (RFC 8785): same inputs, same hash."],
  ["memo_key", "The cache key: processor, image, inputs and mode together. A later run with the same key may be served from the cache."],
  ["env_fingerprint", "The run's environment: adapter, runtime, image, resources, and which variables were set (names, never values)."],
  ["mode", "mock runs make no paid call; real runs do."],
];

async function drawReceipt(run, into) {
  if (!run.envelope || run.envelope.status !== "success") { fill(into, h("p", { class: "muted" }, "A receipt is written for successful runs.")); return; }
  try {
    const [receipt, verify] = await Promise.all([
      api(`/v1/runs/${encodeURIComponent(run.id)}/receipt`),
      api(`/v1/runs/${encodeURIComponent(run.id)}/verify`).catch((error) => ({ error })),
    ]);
    const known = RECEIPT_FIELDS.filter(([name]) => receipt[name] !== undefined);
    const rest = Object.entries(receipt).filter(([name]) => !RECEIPT_FIELDS.some(([field]) => field === name));
    const verdict = verify.error ? h("p", { class: "error" }, `could not verify: ${verify.error.message}`)
      : h("p", { class: verify.ok ? "" : "error", "data-verify": verify.ok ? "ok" : "broken" },
        verify.ok ? `✓ verified: every output (${verify.outputs_checked}, ${bytes(verify.bytes_checked)}) still hashes to its CID, and the index and receipts agree${signature(verify)}` : `✗ ${verify.problems.join("; ")}`);
    fill(into, h("div", { class: "card" }, verdict,
      h("dl", { class: "fields" },
        known.flatMap(([name, why]) => [h("dt", {}, name), h("dd", {}, h("span", { class: "mono" }, JSON.stringify(receipt[name])), h("span", { class: "why" }, why))]),
        rest.flatMap(([name, value]) => [h("dt", {}, name), h("dd", { class: "mono" }, typeof value === "string" ? value : JSON.stringify(value))]))));
  } catch (error) {
    fill(into, failure(error));
  }
}

// ---- new run -------------------------------------------------------------------------------

async function newRunPage(params, page) {
  const processors = (await api("/v1/processors")).processors;
  if (!processors.length) { page.show(h("h1", {}, "New run"), h("p", {}, "The registry has no processor.")); return; }
  const chosen = params.get("ref") ?? processors[0].ref;
  const processor = await api(`/v1/processors/${chosen}`);
  const picker = h("select", { id: "ref", onchange: (event) => { location.hash = `#/new?ref=${encodeURIComponent(event.target.value)}`; } },
    processors.map((entry) => h("option", { value: entry.ref, selected: entry.ref === chosen }, entry.ref)));
  const schema = processor.inputs ?? {};
  const fields = schemaFields(schema);
  const raw = h("textarea", { id: "raw", "aria-label": "Inputs as JSON", hidden: true }, JSON.stringify(example(schema), null, 2));
  // The fields sit in a fieldset disabled in raw mode, so their `required` does not block it.
  const fieldset = h("fieldset", { class: "plain" }, h("legend", { class: "muted" }, "Fields from the inputs schema"), fields.element);
  const useRaw = h("input", { type: "checkbox", id: "use-raw", onchange: () => { raw.hidden = !useRaw.checked; fieldset.hidden = useRaw.checked; fieldset.disabled = useRaw.checked; } });
  const real = h("input", { type: "checkbox", id: "real", name: "real" });
  const attachField = h("input", { id: "attach-field", placeholder: "input name, e.g. image" });
  const attachFile = h("input", { id: "attach-file", type: "file" });
  const plan = h("input", { id: "plan", placeholder: "optional" });
  const problems = h("div");
  const form = h("form", {
    class: "card", onsubmit: async (event) => {
      event.preventDefault();
      fill(problems, );
      try {
        const inputs = useRaw.checked ? JSON.parse(raw.value || "{}") : await fields.value();
        if (attachFile.files.length) {
          const file = attachFile.files[0];
          const name = attachField.value.trim();
          if (!name) throw new ApiError(400, "name the input the file goes in", "the field above the file picker");
          inputs[name] = await upload(file);
        }
        const request = { ref: chosen, inputs, mode: real.checked ? "real" : "mock" };
        if (plan.value.trim()) request.plan = plan.value.trim();
        const run = await api("/v1/runs", { method: "POST", body: JSON.stringify(request), headers: { "content-type": "application/json" } });
        location.hash = `#/runs/${run.id}`;
      } catch (error) {
        fill(problems, failure(error instanceof SyntaxError ? new ApiError(400, `the JSON does not parse: ${error.message}`, "fix the raw inputs") : error));
      }
    },
  },
  h("label", { for: "ref" }, "Processor", picker),
  processor.description ? h("p", { class: "muted" }, processor.description) : null,
  h("h2", {}, "Inputs"), fieldset,
  h("label", { class: "inline", for: "use-raw" }, useRaw, "Write the inputs as raw JSON"), raw,
  h("h2", {}, "Attachment"),
  h("div", { class: "row" }, h("label", { for: "attach-field" }, "Input that gets the file", attachField), h("label", { for: "attach-file" }, "File", attachFile)),
  h("div", { class: "row" }, h("label", { for: "plan" }, "Plan", plan)),
  h("div", { class: "real" }, h("label", { class: "inline", for: "real" }, real, h("strong", {}, "Run for real"), "— calls the provider, may need a secret and cost money. Unchecked, the run is a mock: no network, no cost.")),
  h("div", { class: "row" }, h("button", { type: "submit" }, "Start run")), problems);
  page.show(h("h1", {}, "New run"), form);
}

/** The schema a local `$ref` (`#/$defs/…`) points at, or `{}`. */
function target(root, reference) {
  if (!reference?.startsWith("#/")) return {};
  return reference.slice(2).split("/").reduce((node, key) => node?.[key], root) ?? {};
}

/** A property's schema with its own `$ref` followed (one level: a field, not a form). */
function resolve(root, schema) {
  if (!schema?.$ref) return schema ?? {};
  return { ...target(root, schema.$ref), ...Object.fromEntries(Object.entries(schema).filter(([key]) => key !== "$ref")) };
}

/**
 * The fields an object schema asks for: its own properties and required, and those of its
 * `$ref`, `allOf` and `else` (the short form a spec may allow beside `{"schema","params"}`),
 * each merged in, not one over another. Fixed values (`const`) are left out: the form does not
 * ask for what has one answer. A `$ref` followed once only (a schema may refer to itself).
 */
function fieldsOf(root, schema = root, seen = new Set()) {
  const properties = {};
  const required = [];
  const merge = (part) => {
    for (const [name, property] of Object.entries(part.properties)) properties[name] ??= property;
    required.push(...part.required);
  };
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const resolved = resolve(root, property);
    if (resolved.const === undefined) properties[name] = resolved;
  }
  required.push(...(schema.required ?? []));
  if (schema.$ref && !seen.has(schema.$ref)) {
    seen.add(schema.$ref);
    merge(fieldsOf(root, target(root, schema.$ref), seen));
  }
  for (const part of [...(schema.allOf ?? []), ...(schema.else ? [schema.else] : [])]) merge(fieldsOf(root, part, seen));
  return { properties, required };
}

/** Whether a property takes a stored file: `{"$artifact","cid","mime"}`. */
const isArtifact = (property) => (property.required ?? []).includes("$artifact") || property.properties?.$artifact !== undefined;

/** Uploads a file (`POST /v1/uploads`); returns the reference to put in the inputs. */
const upload = (file) => api(`/v1/uploads?name=${encodeURIComponent(file.name)}`, {
  method: "POST", body: file, headers: { "content-type": file.type || "application/octet-stream" },
});

/** Form controls for an object schema's fields; `value()` reads them back as inputs. */
function schemaFields(schema) {
  const { properties, required: requiredList } = fieldsOf(schema);
  const required = new Set(requiredList);
  const readers = [];
  const element = h("div", {}, Object.entries(properties).map(([name, property]) => {
    const id = `in-${name}`;
    const type = Array.isArray(property.type) ? property.type.find((t) => t !== "null") : property.type;
    let control;
    let read;
    if (isArtifact(property)) {
      control = h("input", { id, name, type: "file", required: required.has(name) });
      read = async () => (control.files.length ? upload(control.files[0]) : undefined);
    } else if (property.enum) {
      control = h("select", { id, name }, required.has(name) ? null : h("option", { value: "" }, "—"), property.enum.map((option) => h("option", { value: JSON.stringify(option), selected: option === property.default }, String(option))));
      read = () => (control.value === "" ? undefined : JSON.parse(control.value));
    } else if (type === "boolean") {
      control = h("input", { id, name, type: "checkbox", checked: property.default === true });
      read = () => control.checked;
    } else if (type === "integer" || type === "number") {
      control = h("input", { id, name, type: "number", step: type === "integer" ? 1 : "any", min: property.minimum, max: property.maximum, value: property.default, required: required.has(name) });
      read = () => (control.value === "" ? undefined : Number(control.value));
    } else if (type === "string") {
      const long = !property.maxLength || property.maxLength > 200;
      control = h(long ? "textarea" : "input", { id, name, maxlength: property.maxLength, required: required.has(name) }, long ? property.default ?? "" : null);
      if (!long && property.default !== undefined) control.value = property.default;
      read = () => (control.value === "" && !required.has(name) ? undefined : control.value);
    } else {
      control = h("textarea", { id, name, "aria-describedby": `${id}-help` }, property.default !== undefined ? JSON.stringify(property.default, null, 2) : "");
      read = () => (control.value.trim() === "" ? undefined : JSON.parse(control.value));
    }
    readers.push([name, read]);
    return h("div", { class: "field" },
      h("label", { for: id, class: type === "boolean" ? "inline" : null }, `${name}${required.has(name) ? " *" : ""}`, control),
      h("div", { class: "help", id: `${id}-help` }, [property.description, isArtifact(property) ? "a file, uploaded and attached" : describe(property)].filter(Boolean).join(" · ")));
  }));
  if (!Object.keys(properties).length) element.append(h("p", { class: "muted" }, "This processor declares no input fields; use raw JSON if it takes any."));
  return {
    element,
    value: async () => {
      const values = await Promise.all(readers.map(async ([name, read]) => [name, await read()]));
      return Object.fromEntries(values.filter(([, value]) => value !== undefined));
    },
  };
}

/** A property's constraints in a few words. */
function describe(property) {
  const words = [];
  const type = Array.isArray(property.type) ? property.type.join(" or ") : property.type;
  if (type) words.push(type);
  if (property.enum) words.push(`one of ${property.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  if (property.minimum !== undefined) words.push(`≥ ${property.minimum}`);
  if (property.maximum !== undefined) words.push(`≤ ${property.maximum}`);
  if (property.minLength !== undefined) words.push(`at least ${property.minLength} characters`);
  if (property.maxLength !== undefined) words.push(`at most ${property.maxLength} characters`);
  if (property.default !== undefined) words.push(`default ${JSON.stringify(property.default)}`);
  return words.join(", ");
}

/** Example inputs for a processor's schema: each required field (or, with none, the first). */
function example(root) {
  const { properties, required } = fieldsOf(root);
  const names = Object.keys(properties);
  const chosen = names.filter((name) => required.includes(name));
  return Object.fromEntries((chosen.length ? chosen : names.slice(0, 1)).map((name) => [name, exampleValue(properties[name])]));
}

/** An example value for one field: its examples, default or first option, else one of its type. */
function exampleValue(schema) {
  if (schema.examples?.length) return schema.examples[0];
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  if (isArtifact(schema)) return { $artifact: "/artifacts/inputs/b3:…/photo.png", cid: "b3:…", mime: "image/png" };
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object": return {};
    case "array": return [];
    case "string": return schema.minLength ? "x".repeat(schema.minLength) : "hello";
    case "integer": case "number": return schema.minimum ?? 1;
    case "boolean": return false;
    default: return null;
  }
}

// ---- processors ----------------------------------------------------------------------------

async function processorsPage(page) {
  const listed = (await api("/v1/processors")).processors;
  const documents = await Promise.all(listed.map((entry) => api(`/v1/processors/${entry.ref}`).catch(() => entry)));
  page.show(h("h1", {}, "Processors"), ...documents.map((processor) => {
    const schema = processor.inputs ?? {};
    const fields = fieldsOf(schema);
    const required = new Set(fields.required);
    const rows = Object.entries(fields.properties).map(([name, property]) => h("tr", {},
      h("td", { class: "mono" }, name), h("td", {}, required.has(name) ? "yes" : "no"),
      h("td", {}, isArtifact(property) ? "a file (uploaded: {$artifact, cid, mime})" : describe(property)), h("td", {}, property.description ?? "")));
    const secrets = [...(processor.secrets_required ?? []).map((name) => `${name} (required for real runs)`), ...(processor.secrets_optional ?? []).map((name) => `${name} (optional)`)];
    return h("section", { class: "card", "aria-label": processor.ref },
      h("h2", {}, processor.ref, " ", h("a", { href: `#/new?ref=${encodeURIComponent(processor.ref)}` }, "Run it")),
      h("p", {}, processor.name ?? "", processor.description ? ` — ${processor.description}` : ""),
      h("dl", { class: "fields" },
        h("dt", {}, "Pins"), h("dd", {}, Object.entries(processor.pins ?? {}).map(([platform, pin]) => h("div", { class: "mono" }, `${platform}: ${pin}`)), Object.keys(processor.pins ?? {}).length ? null : "none (built locally)"),
        h("dt", {}, "Secrets"), h("dd", {}, secrets.length ? secrets.join(", ") : "none", h("span", { class: "why" }, "Names only: values are never shown.")),
        h("dt", {}, "Origin"), h("dd", { class: "mono" }, processor.origin ?? "")),
      h("h3", {}, "Inputs"),
      rows.length ? h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, ["Input", "Required", "Type", "Description"].map((title) => h("th", { scope: "col" }, title)))), h("tbody", {}, rows))) : h("p", { class: "muted" }, "No declared input fields."),
      h("p", { class: "muted" }, "Example:"), h("pre", {}, JSON.stringify(example(schema), null, 2)));
  }));
}

// ---- plans ---------------------------------------------------------------------------------

async function plansPage(page) {
  const [plans, audit] = await Promise.all([
    api("/v1/plans").then((body) => body.plans),
    api("/v1/ledger/verify").catch((error) => ({ error })),
  ]);
  const verdict = audit.error?.status === 403 ? h("p", { class: "muted", "data-ledger": "operators-only" }, "The ledger's check is shown to operators (a plans:admin token).")
    : audit.error ? h("p", { class: "error" }, `ledger check: ${audit.error.message}`)
    : audit.ok ? h("p", { "data-ledger": "ok" }, `✓ the ledger's chain verifies (${audit.entries} entries)`)
      : h("p", { class: "error", "data-ledger": "broken" }, audit.first_broken
        ? `✗ the ledger's chain breaks at entry ${audit.first_broken.seq}: ${audit.first_broken.problem}`
        : `✗ the ledger's database file is damaged: ${audit.file_problem}`);
  page.show(h("h1", {}, "Plans"), h("div", { class: "card" }, verdict),
    plans.length ? plans.map(planCard) : h("p", { class: "muted" }, "No plans. Make one with `theory plan create KEY --budget-usd N` or POST /v1/plans."));
  const timer = setInterval(async () => {
    try {
      const fresh = (await api("/v1/plans")).plans;
      for (const plan of fresh) document.querySelector(`[data-plan="${CSS.escape(plan.key)}"]`)?.replaceWith(planCard(plan));
    } catch { /* shown on the next load */ }
  }, 2000);
  page.on(() => clearInterval(timer));
}

function planCard(plan) {
  const total = Math.max(plan.budget_usd_micro, plan.spent_usd_micro + plan.reserved_usd_micro, 1);
  const part = (name, value) => h("span", { class: name, style: `width:${(100 * Math.max(value, 0)) / total}%` });
  return h("section", { class: "card", "data-plan": plan.key, "aria-label": `Plan ${plan.key}` },
    h("h2", {}, plan.key, " ", h("a", { href: `#/runs?plan=${encodeURIComponent(plan.key)}` }, "Runs charged to it")),
    h("div", {
      class: "bar", role: "meter", "aria-label": `Budget of ${plan.key}`, "aria-valuemin": 0, "aria-valuemax": plan.budget_usd_micro,
      "aria-valuenow": plan.spent_usd_micro + plan.reserved_usd_micro, "data-spent": plan.spent_usd_micro, "data-reserved": plan.reserved_usd_micro,
    }, part("spent", plan.spent_usd_micro), part("reserved", plan.reserved_usd_micro), part("available", plan.available_usd_micro)),
    h("div", { class: "legend" },
      h("span", {}, `spent ${dollars(plan.spent_usd_micro)}`), h("span", {}, `reserved ${dollars(plan.reserved_usd_micro)}`),
      h("span", {}, `available ${dollars(plan.available_usd_micro)}`), h("span", { class: "muted" }, `of ${dollars(plan.budget_usd_micro)}`)));
}

// ---- routing -------------------------------------------------------------------------------

async function route() {
  view?.close();
  const page = (view = new View());
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  const section = parts[0] ?? "runs";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (section === "sign-in") signIn("Paste an API token.");
    else if (section === "runs" && parts[1]) await runPage(decodeURIComponent(parts[1]), page);
    else if (section === "runs") await runsPage(params, page);
    else if (section === "new") await newRunPage(params, page);
    else if (section === "processors") await processorsPage(page);
    else if (section === "plans") await plansPage(page);
    else page.show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/runs" }, "See the runs")));
    document.title = `Theory · ${section}`;
  } catch (error) {
    if (error.status !== 401) page.show(failure(error));
  }
}

window.addEventListener("hashchange", route);
renderWho();
route();
