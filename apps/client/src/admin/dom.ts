/**
 * A few DOM helpers. Everything volunteers report (user agents, adapter names, ids) reaches the
 * page as text nodes, never as HTML: the console must not run a script a volunteer sent.
 */

export type Child = Node | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | undefined>;

/** Creates an element with attributes (false/undefined skipped, true as empty) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? text(String(c)) : c);
  }
}

export function text(s: string): Text {
  return document.createTextNode(s);
}

/** The element with this id, or a thrown error naming it (the page and script disagree). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the admin page is missing #${id}`);
  return el as T;
}

/** Replaces an element's children. */
export function replaceChildren(el: Element, children: readonly Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** Sets text only when it changed, so live updates do not reset selections or restart fades. */
export function setText(el: Element, value: string): void {
  if (el.textContent !== value) el.textContent = value;
}

export function show(el: Element, visible: boolean): void {
  el.classList.toggle('hidden', !visible);
}
