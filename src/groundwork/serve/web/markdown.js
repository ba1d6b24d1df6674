// Markdown of hostile documents, rendered safely: marked (vendor/marked.esm.js) parses, DOMPurify
// (vendor/purify.min.js, loaded as a classic script before this module) sanitises. Versions and
// licences: vendor/README.md.
//
// Documents are untrusted, so three layers stand between their text and the page:
// 1. raw HTML in the Markdown is shown as text (marked's html renderer escapes it), and images are
//    shown as their alt text (an image would make the browser fetch a URL the document chose);
// 2. DOMPurify keeps only the tags and attributes Markdown produces, and links only to http(s),
//    mailto and in-page (#) targets, so javascript: and data: links lose their href;
// 3. the page's Content-Security-Policy (index.html) allows no inline script at all.

import { Marked } from "/vendor/marked.esm.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);

// Headings move down three levels: the panels that show chunks already use h2 and h3.
const HEADING_SHIFT = 3;

const markdown = new Marked({
  gfm: true,
  renderer: {
    html: (token) => (token.block ? `<p>${escapeHtml(token.text)}</p>` : escapeHtml(token.text)),
    image: (token) => escapeHtml(token.text),
  },
  walkTokens: (token) => {
    if (token.type === "heading") token.depth = Math.min(6, token.depth + HEADING_SHIFT);
  },
});

const PURIFY = {
  ALLOWED_TAGS: ["p", "br", "hr", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code", "em", "strong",
    "del", "a", "table", "thead", "tbody", "tr", "th", "td"],
  ALLOWED_ATTR: ["href", "title", "start", "align"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
  RETURN_DOM_FRAGMENT: true,
};

let hooked = false;
function purifier() {
  const purify = window.DOMPurify;
  if (!hooked) {
    // links in documents open in a new tab, without the page as opener or referrer
    purify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A" && node.hasAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer nofollow");
      }
    });
    hooked = true;
  }
  return purify;
}

/** A document's Markdown `text` as a sanitised DocumentFragment (headings start at h4). */
export function renderMarkdown(text) {
  return purifier().sanitize(markdown.parse(String(text ?? "")), PURIFY);
}

// Letters and digits only, lower-cased: the answer quotes the chunk's source text, which still holds
// Markdown syntax (**, #, list markers) that the rendered text no longer has.
function* keyChars(s) {
  for (let i = 0; i < s.length; i++) {
    if (/[\p{L}\p{N}]/u.test(s[i])) for (const c of s[i].toLowerCase()) yield [c, i];
  }
}

/** Wraps the rendered text of `sentence` inside `container` in <mark> elements (one per text node
 * it spans). Returns whether the sentence was found; sentences under 8 letters are not marked. */
export function highlight(container, sentence) {
  const needle = [...keyChars(sentence)].map(([c]) => c).join("");
  if (needle.length < 8) return false;
  const nodes = [];
  const where = []; // for each key character: [index in nodes, offset in that text node]
  let flat = "";
  const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    for (const [c, i] of keyChars(walker.currentNode.data)) {
      flat += c;
      where.push([nodes.length, i]);
    }
    nodes.push(walker.currentNode);
  }
  const at = flat.indexOf(needle);
  if (at < 0) return false;
  const [first, start] = where[at];
  const [last, end] = where[at + needle.length - 1];
  for (let k = first; k <= last; k++) {
    const node = nodes[k];
    const from = k === first ? start : 0;
    const to = k === last ? end + 1 : node.data.length;
    if (node.data.slice(from, to).trim()) wrap(node, from, to);
  }
  return true;
}

function wrap(node, from, to) {
  const range = document.createRange();
  range.setStart(node, from);
  range.setEnd(node, to);
  range.surroundContents(document.createElement("mark"));
}
