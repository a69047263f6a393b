// The API keys section: create a key (shown once, with a copy button), list them, revoke one.

import { createApiKey, listApiKeys, revokeApiKey } from "./api.js";
import { el, timeAgo } from "./ui.js";

const $ = (id) => document.getElementById(id);
let announce = () => {};

function keyItem(key) {
  const used = key.last_used_at ? `last used ${timeAgo(key.last_used_at)}` : "never used";
  return el("li", { className: "key", "data-key-id": key.id },
    el("span", { className: "key-name" }, key.name),
    el("code", { className: "muted" }, `hark_sk_${key.id}_…`),
    el("span", { className: "muted key-meta" }, `created ${timeAgo(key.created_at)} · ${used}`),
    el("button", { type: "button", className: "btn btn-quiet", "aria-label": `Revoke ${key.name}`,
      onclick: () => revoke(key) }, "Revoke"));
}

function render(keys) {
  $("api-keys").replaceChildren(...keys.map(keyItem));
  $("keys-empty").hidden = keys.length > 0;
}

export async function loadKeys() {
  try {
    render((await listApiKeys()).items);
  } catch (e) {
    if (e.status !== 401) $("key-error").textContent = e.message;
  }
}

export function clearKeys() {
  $("api-keys").replaceChildren();
  $("new-key-value").value = "";
  $("new-key").hidden = true;
  $("key-error").textContent = "";
}

async function revoke(key) {
  if (!confirm(`Revoke "${key.name}"? Programs using it are refused within a minute or so.`)) return;
  try {
    await revokeApiKey(key.id);
  } catch (e) {
    if (e.status !== 404) {
      $("key-error").textContent = e.message;
      return;
    }
  }
  announce(`${key.name} revoked`);
  await loadKeys();
}

export function initKeys(announcer) {
  announce = announcer;
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("key-error").textContent = "";
    const name = $("key-name").value.trim();
    if (!name) {
      $("key-error").textContent = "Give the key a name that says where it is used.";
      return;
    }
    try {
      const created = await createApiKey(name);
      $("new-key-value").value = created.key;
      $("copy-key-status").textContent = "";
      $("new-key").hidden = false;
      $("key-name").value = "";
      $("new-key-value").select();
      announce(`Key ${created.name} created: copy it now, it is not shown again`);
      await loadKeys();
    } catch (e) {
      if (e.status !== 401) $("key-error").textContent = e.message;
    }
  });
  $("copy-key").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("new-key-value").value);
      $("copy-key-status").textContent = "Copied";
    } catch {
      $("copy-key-status").textContent = "Could not copy: select the key and copy it yourself.";
    }
  });
  // Once dismissed, the key is gone from the page for good: the server keeps only its hash.
  $("hide-key").addEventListener("click", () => {
    $("new-key-value").value = "";
    $("new-key").hidden = true;
  });
}
