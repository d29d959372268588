// The chat page of `mmagent serve`: one agent session, its events rendered as they stream.
// Plain DOM, no framework, no build step; text always goes in through textContent (never HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, key: sessionStorage.getItem("mmagent-key") || "", busy: false };

function headers(json = true) {
  const h = json ? { "Content-Type": "application/json" } : {};
  if (state.key) h.Authorization = "Bearer " + state.key;
  return h;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function add(node) {
  $("log").appendChild(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

function args(a) {
  return Object.entries(a || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
}

async function init() {
  const r = await fetch("/v1/models", { headers: headers(false) });
  if (r.status === 401) { $("key-form").hidden = false; return; }
  const j = await r.json();
  $("model").textContent = j.data && j.data[0] ? j.data[0].id : "";
}

// One assistant turn on the page: live tokens, tool cards, images, approvals, the answer, feedback.
class TurnView {
  constructor() {
    this.box = add(el("div", "msg assistant"));
    this.live = this.box.appendChild(el("div", "live"));
    this.cards = {};
    this.turnId = null;
  }
  token(text) { this.live.textContent += text; }
  // A step's raw output became calls: its prose (if any) stays, the call markup goes (the cards show the calls).
  settle() {
    const prose = this.live.textContent.replace(/<tool_call>[\s\S]*?(<\/tool_call>|$)/g, "").trim();
    if (prose) this.box.insertBefore(el("div", "note", prose), this.live);
    this.live.textContent = "";
  }
  toolStart(call) {
    this.settle();
    const card = el("div", "tool", `→ ${call.name}(${args(call.arguments)})`);
    card.dataset.tool = call.name;
    this.cards[call.id] = this.box.insertBefore(card, this.live);
  }
  toolEnd(call, result) {
    const card = this.cards[call.id] || this.box.insertBefore(el("div", "tool"), this.live);
    const what = result.ok ? JSON.stringify(result.output) : `${result.error_kind}: ${result.error}`;
    card.appendChild(el("div", "result", `← ${what}`));
    if (!result.ok) card.classList.add("failed");
  }
  async image(id) {
    const img = this.box.insertBefore(el("img", "art"), this.live);  // its place now, its bytes when they come
    img.alt = id;
    // fetch, not <img src>: the request may need the API key header.
    const r = await fetch(`/v1/agent/sessions/${encodeURIComponent(state.session)}/artifacts/${encodeURIComponent(id)}`,
                          { headers: headers(false) });
    if (r.ok) img.src = URL.createObjectURL(await r.blob());
    else img.replaceWith(el("div", "error", `${id}: ${r.status}`));
  }
  approvals(calls) {
    this.settle();
    const asks = calls.filter((c) => !c.external);
    if (!asks.length) return;
    const box = this.box.insertBefore(el("div", "approval"), this.live);
    box.appendChild(el("div", "", "Approval needed: " + asks.map((c) => `${c.name}(${args(c.arguments)})`).join("; ")));
    for (const [label, decision] of [["Approve", "approve"], ["Deny", "deny"]]) {
      const b = box.appendChild(el("button", decision, label));
      b.type = "button";
      b.onclick = () => {
        box.querySelectorAll("button").forEach((x) => { x.disabled = true; });
        b.classList.add("chosen");
        send(`/v1/agent/sessions/${encodeURIComponent(state.session)}/resume`, { decision }, this);
      };
    }
  }
  answer(text) {
    this.live.remove();
    this.live = el("div", "live");
    this.box.appendChild(el("div", "answer", text));
    this.box.appendChild(this.live);
  }
  error(text) { this.box.appendChild(el("div", "error", text)); }
  done(result) {
    this.turnId = result.turn_id;
    if (result.status === "interrupted" || !this.turnId) return;
    const bar = this.box.appendChild(el("div", "feedback"));
    for (const [label, rating] of [["▲ Good", "up"], ["▼ Bad", "down"]]) {
      const b = bar.appendChild(el("button", "rate-" + rating, label));
      b.type = "button";
      b.title = rating === "up" ? "This turn was right" : "This turn was wrong";
      b.onclick = async () => {
        const r = await fetch("/v1/feedback", { method: "POST", headers: headers(), body: JSON.stringify({ turn_id: this.turnId, rating }) });
        bar.querySelectorAll("button").forEach((x) => x.classList.remove("chosen"));
        if (r.ok) { b.classList.add("chosen"); bar.dataset.recorded = rating; }
        else { const j = await r.json().catch(() => ({})); this.error(j.error ? j.error.message : r.statusText); }
      };
    }
  }
}

function handle(type, data, view) {
  if (data.session) { state.session = data.session; $("session").textContent = "session " + data.session; }
  if (type === "token") view.token(data.text || "");
  else if (type === "tool_call_start") view.toolStart(data.call);
  else if (type === "tool_call_end") view.toolEnd(data.call, data.result);
  // Attached media are announced without a step; images a tool made come with the step that made them.
  else if (type === "artifact" && data.artifact.kind === "image" && data.step != null) view.image(data.artifact.id);
  else if (type === "interrupt") view.approvals(data.calls || []);
  else if (type === "answer") view.answer(data.text || "");
  else if (type === "error") view.error(data.text || (data.error && data.error.message) || "the turn failed");
  else if (type === "result") view.done(data);
}

// POSTs and reads the server-sent events of the reply as they arrive (EventSource cannot POST).
async function send(url, body, view) {
  state.busy = true;
  $("send").disabled = true;
  try {
    const r = await fetch(url, { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      view.error(j.error ? j.error.message : `${r.status} ${r.statusText}`);
      return;
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const raw = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let type = "message";
        const data = [];
        for (const line of raw.split("\n")) {
          if (line.startsWith("event: ")) type = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (data.length) handle(type, JSON.parse(data.join("\n")), view);
      }
    }
  } catch (err) {
    view.error(String(err));
  } finally {
    state.busy = false;
    $("send").disabled = false;
  }
}

function readDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const prompt = $("prompt").value.trim();
  if (!prompt || state.busy) return;
  const images = await Promise.all([...$("image").files].map(readDataURL));
  const mine = add(el("div", "msg user", prompt));
  for (const src of images) { const img = mine.appendChild(el("img", "thumb")); img.src = src; }
  $("prompt").value = "";
  $("image").value = "";
  $("attached").textContent = "";
  const view = new TurnView();
  await send("/v1/agent/turns", { session: state.session, prompt, images }, view);
});

$("image").addEventListener("change", () => {
  $("attached").textContent = [...$("image").files].map((f) => f.name).join(", ");
});

$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("composer").requestSubmit(); }
});

$("new-session").addEventListener("click", () => {
  state.session = null;
  $("session").textContent = "";
  $("log").textContent = "";
});

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("key").value;
  sessionStorage.setItem("mmagent-key", state.key);
  $("key-form").hidden = true;
  init();
});

init();
