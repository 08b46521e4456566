// Review page for POST /v1/restore: no framework, no build step.
//
// The server answers edits as {offset, length, original, replacement, confidence} with offset and
// length counted in Unicode code points of the text we sent. JavaScript strings count UTF-16
// units, so the page works on Array.from(text) (one entry per code point) to stay emoji-safe.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let current = null; // {chars: string[], edits: Edit[], spinRatio: number}

  function threshold() {
    return Number($("confidence").value);
  }

  function setError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  async function restore() {
    const text = $("source").value;
    setError("");
    if (!text.trim()) {
      setError("Paste some text first.");
      return;
    }
    const headers = { "Content-Type": "application/json" };
    const key = $("api-key").value.trim();
    if (key) headers.Authorization = `Bearer ${key}`;
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
