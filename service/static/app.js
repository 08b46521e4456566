// Review page for POST /v1/restore: no framework, no build step.
//
// The server answers edits as {offset, length, original, replacement, confidence} with offset and
// length counted in Unicode code points of the text we sent. JavaScript strings count UTF-16
// units, so the page works on Array.from(text) (one entry per code point) to stay emoji-safe.
//
// The slider starts where the CLI stands: at the model's own threshold (GET /v1/model/curve,
// restorer.json's min_confidence); every edit is fetched, so sliding down shows the rest. The
// model's quality curve on annotated real spun text is drawn below, the slider's place marked.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  let current = null; // {chars: string[], edits: Edit[], spinRatio: number}
  let curve = null; // {min_confidence, source, files_scored, points: [{min_confidence, recall, wrongful_per_100_words}]}

  function threshold() {
    return Number($("confidence").value);
  }

  function setError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  function authHeaders() {
    const key = $("api-key").value.trim();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  // The model's threshold and curve, once: a 401 (no key typed yet) or 503 (model loading) at
  // page load is tried again with the next restore. Calls while one is in flight share it.
  let curveRequest = null;

  function loadCurve() {
    if (!curveRequest) {
      curveRequest = fetchCurve().then((loaded) => {
        if (!loaded) curveRequest = null;
      });
    }
    return curveRequest;
  }

  async function fetchCurve() {
    try {
      const response = await fetch("/v1/model/curve", { headers: authHeaders() });
      if (!response.ok) return false;
      curve = await response.json();
    } catch {
      return false;
    }
    const threshold = curve.min_confidence;
    if (threshold === null || threshold === undefined) return true;
    const slider = $("confidence");
    if (Math.abs(threshold * 20 - Math.round(threshold * 20)) > 1e-9) slider.step = "0.01";
    slider.value = String(threshold);
    $("model-threshold").textContent = `model's threshold ${threshold.toFixed(2)}`;
    $("model-threshold").hidden = false;
    return true;
  }

  async function restore() {
    const text = $("source").value;
    setError("");
    if (!text.trim()) {
      setError("Paste some text first.");
      return;
    }
    const headers = { "Content-Type": "application/json", ...authHeaders() };
    const body = JSON.stringify({
      text,
      min_confidence: 0, // the slider filters on the page, so ask for every edit
      protect_quotes: $("protect-quotes").checked,
    });
    $("restore").disabled = true;
    $("status").textContent = "Restoring…";
    try {
      const response = await fetch("/v1/restore", { method: "POST", headers, body });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        $("status").textContent = "";
        setError(`Error ${response.status}: ${answer.detail || response.statusText}`);
        return;
      }
      await loadCurve();
      const result = answer.results[0];
      current = {
        chars: Array.from(text),
        edits: result.edits.slice().sort((a, b) => a.offset - b.offset),
        spinRatio: result.spin_ratio,
      };
      $("model").textContent = `Model: ${answer.model.name} ${answer.model.version}`;
      $("status").textContent = `Restored: ${current.edits.length} edit(s) found.`;
      $("result").hidden = false;
      render();
    } catch (error) {
      $("status").textContent = "";
      setError(`Could not reach the server: ${error.message}`);
    } finally {
      $("restore").disabled = false;
    }
  }

  // Pieces of the restored text: plain strings, and the edits at or above the slider.
  function pieces() {
    const out = [];
    const min = threshold();
    let pos = 0;
    current.edits.forEach((edit, index) => {
      if (edit.offset < pos) return; // overlapping edits cannot happen; skip defensively
      if (edit.offset > pos) out.push(current.chars.slice(pos, edit.offset).join(""));
      if (edit.confidence >= min) {
        out.push({ edit, index });
      } else {
        out.push(current.chars.slice(edit.offset, edit.offset + edit.length).join(""));
      }
      pos = edit.offset + edit.length;
    });
    out.push(current.chars.slice(pos).join(""));
    return out;
  }

  function restoredText() {
    return pieces()
      .map((piece) => (typeof piece === "string" ? piece : piece.edit.replacement))
      .join("");
  }

  function markFor({ edit, index }) {
    const mark = document.createElement("mark");
    mark.className = "edit";
    mark.tabIndex = 0;
    mark.dataset.index = String(index);
    mark.setAttribute("aria-describedby", "tooltip");
    if (edit.replacement) {
      mark.textContent = edit.replacement;
    } else {
      mark.textContent = edit.original; // a deletion: show what goes, struck through
      mark.classList.add("deletion");
    }
    return mark;
  }

  function render() {
    hideTooltip();
    $("confidence-value").textContent = threshold().toFixed(2);
    const parts = pieces();
    $("restored").replaceChildren(
      ...parts.map((piece) =>
        typeof piece === "string" ? document.createTextNode(piece) : markFor(piece)
      )
    );
    const shown = parts.filter((piece) => typeof piece !== "string").length;
    $("edit-count").textContent = `${shown} of ${current.edits.length} edits shown`;
    $("spin-ratio").textContent = `spin ratio ${(current.spinRatio * 100).toFixed(1)}%`;
    drawCurve();
  }

  // --- the quality curve: recall against wrongful edits per 100 words, one point a threshold ---

  function svg(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The scored point the slider stands on: the highest threshold scored at or below it.
  function pointAt(points, value) {
    let found = points[0];
    for (const point of points) if (point.min_confidence <= value + 1e-9) found = point;
    return found;
  }

  function drawCurve() {
    const points = curve ? curve.points.slice().sort((a, b) => a.min_confidence - b.min_confidence) : [];
    $("curve").hidden = points.length === 0;
    if (!points.length) return;
    const box = { left: 44, right: 350, top: 10, bottom: 168 };
    const maxX = Math.max(1, ...points.map((p) => p.wrongful_per_100_words)) * 1.1;
    const maxY = Math.max(...points.map((p) => p.recall)) * 1.15 || 1;
    const x = (p) => box.left + (p.wrongful_per_100_words / maxX) * (box.right - box.left);
    const y = (p) => box.bottom - (p.recall / maxY) * (box.bottom - box.top);
    const parts = [
      svg("line", { x1: box.left, y1: box.bottom, x2: box.right, y2: box.bottom, class: "axis" }),
      svg("line", { x1: box.left, y1: box.top, x2: box.left, y2: box.bottom, class: "axis" }),
      svg("text", { x: (box.left + box.right) / 2, y: 196, class: "axis-label" }, "wrongful edits per 100 words"),
      svg("text", { x: 12, y: (box.top + box.bottom) / 2, class: "axis-label",
                    transform: `rotate(-90 12 ${(box.top + box.bottom) / 2})` }, "recall"),
      svg("text", { x: box.left, y: 182, class: "tick" }, "0"),
      svg("text", { x: box.left - 4, y: box.bottom, class: "tick end" }, "0"),
      svg("text", { x: x({ wrongful_per_100_words: 1 }), y: 182, class: "tick" }, "1"),
      svg("text", { x: box.left - 4, y: y({ recall: maxY / 1.15 }) + 4, class: "tick end" },
          (maxY / 1.15).toFixed(2)),
      svg("polyline", { points: points.map((p) => `${x(p)},${y(p)}`).join(" "), class: "curve-line" }),
      ...points.map((p) => svg("circle", { cx: x(p), cy: y(p), r: 2.5, class: "curve-point" })),
    ];
    const threshold = curve.min_confidence;
    if (threshold !== null && threshold !== undefined) {
      const chosen = pointAt(points, threshold);
      parts.push(svg("circle", { cx: x(chosen), cy: y(chosen), r: 8, class: "model-point" }));
    }
    const value = Number($("confidence").value);
    const here = pointAt(points, value);
    parts.push(svg("circle", { id: "curve-marker", cx: x(here), cy: y(here), r: 5, class: "marker",
                               "data-min-confidence": here.min_confidence }));
    $("curve-plot").replaceChildren(...parts);
    const on = curve.files_scored ? ` on ${curve.files_scored} annotated files of real spun text` : "";
    $("curve-caption").textContent =
      `At ${value.toFixed(2)} (scored at ${here.min_confidence.toFixed(2)})${on}: the model restores ` +
      `${(here.recall * 100).toFixed(1)}% of the spun places with ` +
      `${here.wrongful_per_100_words.toFixed(2)} wrongful edits per 100 words. ` +
      "The ring marks the model's threshold.";
  }

  function showTooltip(mark) {
    const edit = current.edits[Number(mark.dataset.index)];
    const tip = $("tooltip");
    const original = edit.original ? `“${edit.original}”` : "(nothing: inserted)";
    tip.replaceChildren(
      line("Spun original: ", original),
      line("Replacement: ", edit.replacement ? `“${edit.replacement}”` : "(deleted)"),
      line("Confidence: ", edit.confidence.toFixed(2))
    );
    tip.hidden = false;
    const box = mark.getBoundingClientRect();
    tip.style.left = `${window.scrollX + box.left}px`;
    tip.style.top = `${window.scrollY + box.bottom + 6}px`;
  }

  function line(label, value) {
    const row = document.createElement("div");
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = label;
    row.append(name, value);
    return row;
  }

  function hideTooltip() {
    $("tooltip").hidden = true;
  }

  async function copy() {
    const text = restoredText();
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = document.createElement("textarea"); // older browsers, insecure origins
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    $("status").textContent = "Copied the restored text.";
  }

  function onMarkEvent(handler) {
    return (event) => {
      const mark = event.target.closest ? event.target.closest("mark.edit") : null;
      if (mark) handler(mark);
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    loadCurve();
    $("restore").addEventListener("click", restore);
    $("source").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) restore();
    });
    $("confidence").addEventListener("input", render);
    $("copy").addEventListener("click", copy);
    const restored = $("restored");
    restored.addEventListener("mouseover", onMarkEvent(showTooltip));
    restored.addEventListener("focusin", onMarkEvent(showTooltip));
    restored.addEventListener("mouseout", onMarkEvent(hideTooltip));
    restored.addEventListener("focusout", onMarkEvent(hideTooltip));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") hideTooltip();
    });
  });
})();
