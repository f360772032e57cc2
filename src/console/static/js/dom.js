/* global document, Node */
// Small DOM helpers. Text always goes in through textContent: nothing from the
// API is ever parsed as HTML.

/**
 * h('button', { type: 'button', onclick: fn }, 'Label', childNode)
 * Attributes: `class`, `text`, `on<event>` handlers, booleans (true → present), anything else via setAttribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name === 'value') el.value = value;
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let nextId = 0;
/** A unique element id for label/input pairs. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * A labelled form field. `control` is an <input>/<select> element; its `name` is
 * the API field it feeds, so field errors from the API can be pinned to it.
 */
export function field(labelText, control, hint) {
  const id = control.id || uid(control.name || 'field');
  control.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, labelText), control, hintEl);
}

export function select(name, options, value = '') {
  const el = h('select', { name });
  for (const [optValue, label] of options) el.append(h('option', { value: optValue }, label));
  el.value = value;
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * A table: columns = [{ label, num?, cell(row) → Node|string }].
 */
export function table(caption, columns, rows, footer) {
  const head = h(
    'tr',
    {},
    columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : undefined }, c.label)),
  );
  const body = rows.map((row) =>
    h(
      'tr',
      {},
      columns.map((c) =>
        h('td', { class: [c.num ? 'num' : '', c.class ?? ''].join(' ').trim() || undefined }, c.cell(row)),
      ),
    ),
  );
  const foot = footer
    ? h(
        'tfoot',
        {},
        h(
          'tr',
          {},
          columns.map((c) => h('td', { class: c.num ? 'num' : undefined }, footer(c))),
        ),
      )
    : null;
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', {}, h('caption', {}, caption), h('thead', {}, head), h('tbody', {}, body), foot),
  );
}

/** The values of a form's named controls, blanks left out. */
export function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name || el.type === 'file') continue;
    const v = el.value.trim();
    if (v !== '') values[el.name] = v;
  }
  return values;
}
