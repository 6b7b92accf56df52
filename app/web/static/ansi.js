// ANSI SGR colour codes -> spans. Text is only ever set through textContent, so a log line
// is shown as the text it is (a "<script>" in a log is eight characters on screen). Other
// escape sequences (cursor moves, OSC titles) are dropped.

// CSI ... final byte | OSC ... BEL or ST | a two-character escape
const ESCAPES = /\x1b\[([0-9;:?<=>]*)[ -\/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]/g;
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g; // C0 controls but tab

export function stripAnsi(text) {
  return lastDrawing(text).replace(ESCAPES, "").replace(CONTROLS, "");
}

function lastDrawing(text) {
  const cr = text.lastIndexOf("\r"); // a progress bar redraws its line: keep the last drawing
  return cr >= 0 ? text.slice(cr + 1) : text;
}

function tidy(text) {
  return text.replace(CONTROLS, "");
}

const CUBE = [0, 95, 135, 175, 215, 255];

function xterm256(n) {
  if (n < 16) return null; // a class: the 16 named colours follow the stylesheet
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v}, ${v}, ${v})`;
  }
  const i = n - 16;
  return `rgb(${CUBE[Math.floor(i / 36)]}, ${CUBE[Math.floor(i / 6) % 6]}, ${CUBE[i % 6]})`;
}

// Reads an extended colour (38/48;5;n or 38/48;2;r;g;b) from params at i; returns
// [className or null, css colour or null, next index].
function extended(params, i) {
  if (params[i + 1] === 5 && params[i + 2] !== undefined) {
    const n = params[i + 2] & 255;
    return [n < 16 ? String(n) : null, xterm256(n), i + 3];
  }
  if (params[i + 1] === 2 && params[i + 4] !== undefined) {
    const [r, g, b] = params.slice(i + 2, i + 5).map((v) => v & 255);
    return [null, `rgb(${r}, ${g}, ${b})`, i + 5];
  }
  return [null, null, params.length];
}

function apply(state, params) {
  if (params.length === 0) params = [0];
  for (let i = 0; i < params.length; ) {
    const p = params[i];
    if (p === 0) {
      Object.assign(state, { fg: null, bg: null, fgCss: null, bgCss: null, bold: false, dim: false, italic: false, underline: false });
    } else if (p === 1) state.bold = true;
    else if (p === 2) state.dim = true;
    else if (p === 3) state.italic = true;
    else if (p === 4) state.underline = true;
    else if (p === 22) state.bold = state.dim = false;
    else if (p === 23) state.italic = false;
    else if (p === 24) state.underline = false;
    else if (p >= 30 && p <= 37) [state.fg, state.fgCss] = [String(p - 30), null];
    else if (p >= 90 && p <= 97) [state.fg, state.fgCss] = [String(p - 82), null];
    else if (p === 39) state.fg = state.fgCss = null;
    else if (p >= 40 && p <= 47) [state.bg, state.bgCss] = [String(p - 40), null];
    else if (p >= 100 && p <= 107) [state.bg, state.bgCss] = [String(p - 92), null];
    else if (p === 49) state.bg = state.bgCss = null;
    else if (p === 38 || p === 48) {
      const [cls, css, next] = extended(params, i);
      if (p === 38) [state.fg, state.fgCss] = [cls, css];
      else [state.bg, state.bgCss] = [cls, css];
      i = next;
      continue;
    }
    i += 1;
  }
}

function span(text, state) {
  const el = document.createElement("span");
  el.textContent = text;
  const classes = [];
  if (state.fg !== null) classes.push(`fg${state.fg}`);
  if (state.bg !== null) classes.push(`bg${state.bg}`);
  if (state.bold) classes.push("bold");
  if (state.dim) classes.push("dim");
  if (state.italic) classes.push("italic");
  if (state.underline) classes.push("underline");
  if (classes.length) el.className = classes.join(" ");
  if (state.fgCss) el.style.color = state.fgCss; // CSSOM, which the style-src policy allows
  if (state.bgCss) el.style.backgroundColor = state.bgCss;
  return el;
}

// Appends the line's text to parent as spans, one per run of equal attributes.
export function renderAnsi(text, parent) {
  text = lastDrawing(text);
  const state = { fg: null, bg: null, fgCss: null, bgCss: null, bold: false, dim: false, italic: false, underline: false };
  let last = 0;
  ESCAPES.lastIndex = 0;
  for (let m; (m = ESCAPES.exec(text)); ) {
    if (m.index > last) {
      const piece = tidy(text.slice(last, m.index));
      if (piece) parent.append(span(piece, state));
    }
    last = ESCAPES.lastIndex;
    if (m[2] === "m") {
      const params = m[1] === "" ? [] : m[1].split(/[;:]/).map((v) => (v === "" ? 0 : Number(v)));
      apply(state, params);
    }
  }
  const rest = tidy(text.slice(last));
  if (rest) parent.append(span(rest, state));
}
