// What every geogrid page script uses: building elements from text (never HTML) and the
// page's words from the server's gettext catalogue (js.po; English keys).
(function () {
  "use strict";

  // el("dl", {class: "x"}, "text", otherNode): strings become text nodes; on* attributes are listeners.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // translator(config.messages)("Split {code}", {code}): the words, named fields filled in.
  function translator(words) {
    return function t(text, values) {
      const said = (words || {})[text] || text;
      return values ? said.replace(/\{(\w+)\}/g, (m, key) => (key in values ? String(values[key]) : m)) : said;
    };
  }

  window.geogrid = { el, translator };
})();
