import { h, replace } from './dom.js';

/**
 * Shows an API error: its `detail`, and each `errors[].field` both listed and
 * marked on the form control of the same name (aria-invalid + description).
 */
export function showError(box, err, form) {
  clearError(box, form);
  const fieldErrors = err?.fieldErrors ?? [];
  const message = err?.message || 'Something went wrong.';
  const list = fieldErrors.length
    ? h(
        'ul',
        {},
        fieldErrors.map((e) => h('li', {}, `${e.field}: ${e.message}`)),
      )
    : null;
  replace(box, h('strong', {}, message), list);
  box.hidden = false;
  if (form) {
    for (const e of fieldErrors) {
      const control = form.elements.namedItem(e.field);
      if (control && control.setAttribute) {
        control.setAttribute('aria-invalid', 'true');
        control.setAttribute('aria-errormessage', box.id);
      }
    }
  }
}

export function clearError(box, form) {
  box.hidden = true;
  box.replaceChildren();
  if (form) {
    for (const el of form.elements) {
      el.removeAttribute?.('aria-invalid');
      el.removeAttribute?.('aria-errormessage');
    }
  }
}

let boxes = 0;
/** An error region, announced to screen readers when it fills. */
export function errorBox() {
  boxes += 1;
  return h('div', { class: 'error', role: 'alert', id: `error-${boxes}`, hidden: true });
}

export function statusLine() {
  return h('p', { class: 'status-line', role: 'status', 'aria-live': 'polite' });
}

/**
 * Keyset paging: the API gives only a forward cursor, so the pager keeps the
 * cursors of the pages seen to step back. `load(cursor)` fetches one page and
 * returns its `next_cursor`.
 */
export function pager(label, load) {
  const stack = [undefined];
  let index = 0;
  let next = null;
  const prevBtn = h('button', { type: 'button', class: 'secondary', disabled: true }, '← Newer');
  const nextBtn = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Older →');
  const where = h('span', { class: 'status-line' });
  const el = h(
    'div',
    { class: 'toolbar', role: 'navigation', 'aria-label': `${label} pages` },
    prevBtn,
    nextBtn,
    where,
  );

  async function show(i) {
    prevBtn.disabled = true;
    nextBtn.disabled = true;
    try {
      next = await load(stack[i]);
      index = i;
      stack.length = i + 1;
      if (next) stack.push(next);
    } finally {
      prevBtn.disabled = index === 0;
      nextBtn.disabled = !next;
      where.textContent = `Page ${index + 1}${next ? '' : ' (last)'}`;
    }
  }
  prevBtn.addEventListener('click', () => void show(index - 1).catch(() => {}));
  nextBtn.addEventListener('click', () => void show(index + 1).catch(() => {}));
  return {
    el,
    /** Back to the first page (a new search). */
    first: () => show(0),
    reset() {
      stack.length = 1;
      index = 0;
      next = null;
      prevBtn.disabled = true;
      nextBtn.disabled = true;
      where.textContent = '';
    },
  };
}

/** Runs an async action with its button disabled, reporting failures in `box`. */
export async function busy(button, box, form, action) {
  if (button) button.disabled = true;
  if (box) clearError(box, form);
  try {
    return await action();
  } catch (err) {
    if (box) showError(box, err, form);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}
