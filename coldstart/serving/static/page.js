// The try-it page: one new user's query and clicks, kept in this browser tab (sessionStorage; memory when storage
// is unavailable) and sent, oldest click first, with every POST /recommend. The server keeps nothing.
// Product titles are data: they are written with textContent only, never parsed as HTML.
"use strict";

(() => {
  const K = 10;
  const MAX_CLICKS = 50; // coldstart.serving.schema.MAX_CLICKS: the request carries the most recent ones
  const STORAGE_KEY = "coldstart.new-user";
  const SIGNALS = { // the names RecommendResponse.signals uses, as a shopper would say them
    dense: "meaning of the words (encoder)",
    bm25: "matching words (BM25)",
    covisit: "viewed together by other users",
    popularity: "popular with other users",
    category: "category other users went to next",
    brand: "brand other users went to next",
    neighbours: "products judged alike",
    mmr: "spread over kinds of product",
    reranker: "re-ranked by a cross-encoder",
    ranker: "ordered by a model learned from judged searches",
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("search-form"), query: $("query"), indexStatus: $("index-status"),
    error: $("error"), errorText: $("error-text"), retry: $("retry"),
    answer: $("answer"), heading: $("results-heading"), summary: $("results-summary"), results: $("results"),
    warnings: $("warnings"), details: $("details"), signals: $("signals"),
    version: $("answer-version"), serviceMs: $("service-ms"), roundTripMs: $("round-trip-ms"),
    clicks: $("clicks"), clicksEmpty: $("clicks-empty"), reset: $("reset"),
  };

  // ---------------------------------------------------------------------------------------------- state

  let state = load();
  let running = null; // the AbortController of the request in flight: a newer request replaces it

  function fresh() { return { query: "", clicks: [] }; }

  function load() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY));
      if (saved && typeof saved.query === "string" && Array.isArray(saved.clicks) && saved.clicks.every(
        (c) => c && typeof c.item_id === "string" && typeof c.title === "string")) {
        return { query: saved.query, clicks: saved.clicks.slice(-MAX_CLICKS) };
      }
    } catch (_) { /* no storage (private mode, blocked): memory only */ }
    return fresh();
  }

  function save() {
    try { sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state)); } catch (_) { /* memory only */ }
  }

  // ---------------------------------------------------------------------------------------------- helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const ms = (value) => `${value.toFixed(1)} ms`;

  async function readJson(response) {
    const text = await response.text();
    try { return { json: JSON.parse(text), text }; } catch (_) { return { json: null, text }; }
  }

  function describeFailure(response, body) {
    const message = body.json && typeof body.json.error === "string" ? body.json.error
      : body.text.trim().slice(0, 300) || response.statusText || "no message";
    let text = `${response.status} ${response.statusText || ""}`.trim() + `: ${message}`;
    const retryAfter = response.headers.get("Retry-After");
    if (retryAfter) text += ` (the service asks to retry after ${retryAfter} s)`;
    return text;
  }

  function showError(text) {
    ui.errorText.textContent = text;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.hidden = true;
    ui.errorText.textContent = "";
  }

  // ---------------------------------------------------------------------------------------------- the index

  async function showIndexStatus() {
    try {
      const response = await fetch("healthz", { headers: { accept: "application/json" }, cache: "no-store" });
      const body = await readJson(response);
      const health = body.json || {};
      if (response.ok && health.index_version) {
        ui.indexStatus.textContent = `Index version ${health.index_version} · ${health.items} products`;
        ui.indexStatus.dataset.version = health.index_version;
        return;
      }
      ui.indexStatus.textContent = response.status === 503
        ? "The service is loading its index; this page retries every 3 s."
        : `The health check failed: ${describeFailure(response, body)}`;
    } catch (err) {
      ui.indexStatus.textContent = `The service does not answer (${err.message}); retrying every 3 s.`;
    }
    setTimeout(showIndexStatus, 3000);
  }

  // ---------------------------------------------------------------------------------------------- asking

  async function recommend() {
    const query = state.query.trim();
    if (!query && state.clicks.length === 0) {
      clearError();
      showEmpty("Type what you are looking for and press Enter.");
      return;
    }
    const body = { k: K, clicks: state.clicks.map((c) => c.item_id) };
    if (query) body.query = query;

    if (running) running.abort();
    const controller = new AbortController();
    running = controller;
    ui.answer.setAttribute("aria-busy", "true");
    const started = performance.now();
    try {
      const response = await fetch("recommend", {
        method: "POST", signal: controller.signal, cache: "no-store",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await readJson(response);
      const roundTrip = performance.now() - started;
      if (controller !== running) return; // a newer request owns the page
      if (!response.ok || !answer.json) {
        showError(response.ok ? `The service answered something that is not JSON: ${answer.text.slice(0, 300)}`
          : describeFailure(response, answer));
        return;
      }
      clearError();
      render(answer.json, roundTrip, query);
    } catch (err) {
      if (err.name === "AbortError") return;
      showError(`The request did not reach the service (${err.message}). Is it still running?`);
    } finally {
      if (controller === running) {
        running = null;
        ui.answer.removeAttribute("aria-busy");
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- showing

  function showEmpty(message) {
    ui.results.replaceChildren();
    ui.summary.textContent = message;
    ui.warnings.hidden = true;
    ui.details.hidden = true;
  }

  function render(answer, roundTrip, query) {
    const focusWasInList = ui.results.contains(document.activeElement);
    const clicked = state.clicks.length;
    const because = [query ? `“${query}”` : "", clicked ? `${clicked} click${clicked > 1 ? "s" : ""}` : ""]
      .filter(Boolean).join(" and ");
    ui.summary.textContent = answer.items.length
      ? `${answer.items.length} products for ${because}. Click one to add it to your clicks.`
      : `Nothing to recommend for ${because}.`;

    ui.results.replaceChildren(...answer.items.map((item, n) => {
      const button = el("button", "result");
      button.type = "button";
      button.dataset.itemId = item.item_id;
      button.append(el("span", "rank", String(n + 1)));
      const text = el("span", "result-text");
      text.append(el("span", "title", item.title),
        el("span", "sub", `${item.item_id} · score ${item.score.toFixed(3)}`));
      button.append(text);
      const add = el("span", "add", "add to my clicks");
      add.setAttribute("aria-hidden", "true");
      button.append(add);
      button.addEventListener("click", () => addClick(item));
      const li = el("li");
      li.append(button);
      return li;
    }));

    const warnings = [...answer.warnings];
    ui.warnings.replaceChildren(...warnings.map((w) => el("li", "", w)));
    ui.warnings.hidden = warnings.length === 0;

    ui.signals.replaceChildren(...answer.signals.map((name) => {
      const chip = el("li", "signal");
      chip.append(el("strong", "", name), el("span", "", SIGNALS[name] || ""));
      return chip;
    }));
    if (answer.signals_version) ui.signals.append(el("li", "signal muted", `session signals ${answer.signals_version}`));

    const t = answer.timing_ms;
    const parts = [`encode ${ms(t.encode_ms)}`, `retrieve ${ms(t.retrieve_ms)}`];
    if (t.rerank_ms) parts.push(`re-rank ${ms(t.rerank_ms)}`);
    ui.version.textContent = answer.index_version;
    ui.serviceMs.textContent = `${ms(t.total_ms)} (${parts.join(", ")})` +
      (answer.cache_hit ? ", query embedding cached" : "");
    ui.roundTripMs.textContent = ms(roundTrip);
    ui.details.hidden = false;
    if (focusWasInList || document.activeElement === document.body) ui.heading.focus({ preventScroll: true });
  }

  function renderClicks() {
    ui.clicks.replaceChildren(...state.clicks.map((c) => {
      const li = el("li");
      li.dataset.itemId = c.item_id;
      li.append(el("span", "title", c.title), el("span", "sub", c.item_id));
      return li;
    }));
    ui.clicksEmpty.hidden = state.clicks.length > 0;
    ui.reset.disabled = state.clicks.length === 0 && !state.query;
  }

  // ---------------------------------------------------------------------------------------------- actions

  function addClick(item) {
    state.clicks = [...state.clicks.filter((c) => c.item_id !== item.item_id),
      { item_id: item.item_id, title: item.title }].slice(-MAX_CLICKS);
    save();
    renderClicks();
    recommend();
  }

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    state.query = ui.query.value;
    save();
    renderClicks();
    recommend();
  });

  ui.retry.addEventListener("click", () => recommend());

  ui.reset.addEventListener("click", () => {
    if (running) running.abort();
    state = fresh();
    save();
    ui.query.value = "";
    clearError();
    showEmpty("You are a new user again: nothing is known about you. Type what you are looking for.");
    renderClicks();
    ui.query.focus();
  });

  // ---------------------------------------------------------------------------------------------- start

  ui.query.value = state.query;
  renderClicks();
  showIndexStatus();
  if (state.query.trim() || state.clicks.length) recommend(); else ui.query.focus();
})();
