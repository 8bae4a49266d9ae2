// Interactive docs for the usermgmt API: renders /openapi.json and sends requests.
// Self-contained (no framework, no CDN). Builds the DOM with textContent only.
"use strict";

(function () {
  const TOKEN_KEY = "usermgmt-docs-token";
  let spec = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function resolve(schema) {
    let seen = 0;
    while (schema && schema.$ref && seen < 20) {
      const name = schema.$ref.split("/").pop();
      schema = spec.components.schemas[name];
      seen += 1;
    }
    return schema || {};
  }

  function typeOf(schema) {
    if (schema && schema.$ref) return schema.$ref.split("/").pop();
    if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
    if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
    if (schema.const !== undefined) return JSON.stringify(schema.const);
    if (schema.type === "array") return typeOf(schema.items || {}) + "[]";
    if (schema.format) return schema.type + " (" + schema.format + ")";
    return schema.type || (schema.properties ? "object" : "any");
  }

  function example(schema, depth) {
    schema = resolve(schema);
    depth = depth || 0;
    if (depth > 6) return null;
    if (schema.default !== undefined && schema.default !== null) return schema.default;
    if (schema.const !== undefined) return schema.const;
    if (schema.enum) return schema.enum[0];
    if (schema.anyOf) return example(schema.anyOf.find((s) => s.type !== "null") || {}, depth + 1);
    switch (schema.type) {
      case "object": {
        const out = {};
        const required = new Set(schema.required || []);
        for (const [name, sub] of Object.entries(schema.properties || {})) {
          if (required.has(name) || depth === 0) out[name] = example(sub, depth + 1);
        }
        return out;
      }
      case "array": return [];
      case "integer": case "number": return schema.minimum || 0;
      case "boolean": return false;
      case "string":
        if (schema.format === "uuid") return "00000000-0000-4000-8000-000000000000";
        if (schema.format === "date-time") return new Date().toISOString();
        return "";
      default: return null;
    }
  }

  function schemaTable(schema) {
    schema = resolve(schema);
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    const rows = Object.entries(props).map(([name, sub]) =>
      el("tr", {},
        el("td", {}, el("code", {}, name), required.has(name) ? " *" : ""),
        el("td", {}, typeOf(sub)),
        el("td", { class: "muted" }, resolve(sub).description || "")));
    if (!rows.length) return el("p", { class: "muted" }, typeOf(schema));
    return el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "")), rows);
  }

  async function send(method, path, op, inputs, bodyArea, output) {
    let url = path;
    const query = new URLSearchParams();
    for (const param of op.parameters || []) {
      const value = inputs[param.in + ":" + param.name].value.trim();
      if (!value) continue;
      if (param.in === "path") url = url.replace("{" + param.name + "}", encodeURIComponent(value));
      else query.append(param.name, value);
    }
    if ([...query].length) url += "?" + query.toString();
    const headers = { Accept: "application/json" };
    const token = document.getElementById("token").value.trim();
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method: method.toUpperCase(), headers };
    if (bodyArea && bodyArea.value.trim()) {
      headers["Content-Type"] = "application/json";
      init.body = bodyArea.value;
    }
    output.replaceChildren(el("p", { class: "muted" }, "Sending…"));
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try {
        const data = JSON.parse(text);
        shown = JSON.stringify(data, null, 2);
        if (data && data.tokens && data.tokens.access_token) {
          const field = document.getElementById("token");
          field.value = data.tokens.access_token;
          sessionStorage.setItem(TOKEN_KEY, field.value);
        }
      } catch (e) { /* not JSON: show as text */ }
      output.replaceChildren(
        el("p", {},
          el("span", { class: response.ok ? "status-ok" : "status-err" }, response.status + " " + response.statusText),
          el("span", { class: "muted" }, "  " + method.toUpperCase() + " " + url + "  request id " + (response.headers.get("X-Request-ID") || "-"))),
        shown ? el("pre", {}, shown) : el("p", { class: "muted" }, "(no body)"));
    } catch (error) {
      output.replaceChildren(el("p", { class: "status-err" }, "Request failed: " + error));
    }
  }

  function renderOperation(path, method, op) {
    const id = op.operationId;
    const inputs = {};
    const paramRows = (op.parameters || []).map((param) => {
      const input = el("input", { placeholder: typeOf(param.schema) });
      inputs[param.in + ":" + param.name] = input;
      return el("tr", {},
        el("td", {}, el("code", {}, param.name), param.required ? " *" : ""),
        el("td", {}, param.in),
        el("td", {}, typeOf(param.schema)),
        el("td", {}, input));
    });
    let bodyArea = null;
    const parts = [];
    if (op.description) parts.push(el("p", {}, op.description));
    if (paramRows.length) {
      parts.push(el("h3", {}, "Parameters"),
        el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "value")), paramRows));
    }
    const body = op.requestBody && op.requestBody.content["application/json"];
    if (body) {
      bodyArea = el("textarea", { spellcheck: "false" });
      bodyArea.value = JSON.stringify(example(body.schema), null, 2);
      parts.push(el("h3", {}, "Request body" + (op.requestBody.required ? "" : " (optional)")),
        schemaTable(body.schema), bodyArea);
    }
    parts.push(el("h3", {}, "Responses"),
      el("table", {}, Object.entries(op.responses).map(([status, response]) => {
        const content = response.content && Object.values(response.content)[0];
        return el("tr", {}, el("td", {}, el("code", {}, status)), el("td", {}, response.description),
          el("td", { class: "muted" }, content ? typeOf(content.schema) : ""));
      })));
    const output = el("div", {});
    parts.push(el("button", { class: "send", type: "button", onclick: () => send(method, path, op, inputs, bodyArea, output) }, "Send request"), output);
    const secured = op.security && op.security.length;
    return el("details", { class: "op", id },
      el("summary", {},
        el("span", { class: "method m-" + method }, method.toUpperCase()),
        el("span", { class: "path" }, path),
        el("span", {}, op.summary || ""),
        secured ? el("span", { class: "lock" }, "needs a token") : null),
      el("div", { class: "body" }, parts));
  }

  function render() {
    document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
    document.title = spec.info.title + " docs";
    const nav = document.getElementById("nav");
    const content = document.getElementById("content");
    const byTag = new Map((spec.tags || []).map((tag) => [tag.name, []]));
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags || ["other"])[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push([path, method, op]);
      }
    }
    const intro = el("div", {}, spec.info.description.split("\n\n").map((p) => el("p", {}, p)));
    content.replaceChildren(intro);
    nav.replaceChildren();
    for (const [tag, ops] of byTag) {
      if (!ops.length) continue;
      nav.append(el("h2", {}, tag));
      content.append(el("h2", {}, tag));
      for (const [path, method, op] of ops) {
        const link = el("a", { href: "#" + op.operationId }, method.toUpperCase() + " " + path);
        link.addEventListener("click", () => { document.getElementById(op.operationId).open = true; });
        nav.append(link);
        content.append(renderOperation(path, method, op));
      }
    }
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target) {
      target.open = true;
      target.scrollIntoView();
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const field = document.getElementById("token");
    field.value = sessionStorage.getItem(TOKEN_KEY) || "";
    field.addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, field.value.trim()));
    document.getElementById("clear-token").addEventListener("click", () => {
      field.value = "";
      sessionStorage.removeItem(TOKEN_KEY);
    });
    try {
      const response = await fetch("/openapi.json");
      spec = await response.json();
      render();
    } catch (error) {
      document.getElementById("content").replaceChildren(el("p", { class: "status-err" }, "Could not load /openapi.json: " + error));
    }
  });
})();
