// framecast explorer: the live feed (server-sent events), the freshness line, and the
// verified video and posters (verify.js). Text from the chain is set with textContent
// only: nothing here parses HTML.
"use strict";

(() => {
  const TIMEOUT_MS = 20000;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function fcc(wei) {
    if (wei === null || wei === undefined) return "—";
    const value = BigInt(wei), unit = 10n ** 18n;
    const whole = value / unit, frac = value % unit;
    let text = whole.toLocaleString("en-US");
    if (frac) text += "." + frac.toString().padStart(18, "0").replace(/0+$/, "");
    return text + " FCC";
  }

  function short(address) {
    if (!address) return "—";
    return address.length < 14 ? address : address.slice(0, 8) + "…" + address.slice(-4);
  }

  function cut(text, limit) {
    const s = text === null || text === undefined ? "" : String(text);
    return s.length <= limit ? s : s.slice(0, limit - 1) + "…";
  }

  // ------------------------------------------------------------------ the feed
  function feedRow(job) {
    const tr = el("tr");
    tr.dataset.job = String(job.job_id);
    const id = el("td"), link = el("a", "#" + job.job_id);
    link.href = "/jobs/" + encodeURIComponent(job.job_id);
    id.append(link);
    const state = el("td"), badge = el("span", job.state, "state state-" + String(job.state).replace(/[^a-z]/g, ""));
    state.append(badge);
    tr.append(id, state, el("td", cut(job.model, 64)), el("td", cut(job.prompt, 140), "prompt"),
              el("td", fcc(job.price || job.max_price)), el("td", short(job.provider)),
              el("td", job.updated_block));
    tr.classList.add("flash");
    return tr;
  }

  function follow() {
    if (!window.EventSource) return;
    const feed = document.getElementById("feed");
    const status = document.getElementById("status");
    // Resume after the change the page was rendered at (data-seq on the feed): nothing
    // that happened while the page loaded is missed. Reconnects send Last-Event-ID.
    const live = document.getElementById("live");
    const after = live && /^[0-9]+$/.test(live.dataset.seq || "") ? "?after=" + live.dataset.seq : "";
    const source = new EventSource("/api/stream" + after);
    source.addEventListener("job", (event) => {
      const job = JSON.parse(event.data);
      if (feed) {
        const old = feed.querySelector('tr[data-job="' + Number(job.job_id) + '"]');
        if (old) old.remove();
        feed.prepend(feedRow(job));
        while (feed.rows.length > 50) feed.deleteRow(feed.rows.length - 1);
      }
    });
    source.addEventListener("status", (event) => {
      const s = JSON.parse(event.data);
      if (status) {
        status.textContent = s.line;
        status.classList.toggle("stale", Boolean(s.stale_since));
      }
    });
    source.onerror = () => {
      if (status) {
        status.textContent = "explorer unreachable since " + new Date().toISOString() + " (retrying)";
        status.classList.add("stale");
      }
    };
  }

  // ------------------------------------------------------------------ verified video
  function setVerdict(node, text, kind) {
    node.textContent = text;
    node.className = "verdict " + kind;
    node.dataset.verdict = kind;
  }

  function showReceipt(dl, bytes) {
    dl.replaceChildren();
    let receipt;
    try {
      receipt = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      dl.append(el("dt", "receipt"), el("dd", "not JSON"));
      return;
    }
    const body = receipt && typeof receipt.body === "object" && receipt.body ? receipt.body : {};
    const keys = ["job_id", "provider", "model", "seed", "num_frames", "width", "height", "fps",
                  "video_cid", "video_sha256", "frames_digest", "weights_manifest_hash"];
    for (const key of keys) {
      if (key in body) dl.append(el("dt", key), el("dd", cut(typeof body[key] === "object" ? JSON.stringify(body[key]) : body[key], 200)));
    }
    if (body.environment && typeof body.environment === "object") {
      const env = body.environment;
      dl.append(el("dt", "environment"), el("dd", cut([env.device, env.gpu, "torch " + env.torch, "diffusers " + env.diffusers, env.runtime].filter(Boolean).join(", "), 300)));
    }
    dl.append(el("dt", "signature"), el("dd", cut(receipt.signature, 140), "hash"));
  }

  async function verifySection(section) {
    const verdict = section.querySelector("[data-role=verdict]");
    const player = section.querySelector("[data-role=player]");
    const poster = section.querySelector("[data-role=poster]");
    const receipt = section.querySelector("[data-role=receipt]");
    const attempts = section.querySelector("[data-role=attempts]");
    const gateways = JSON.parse(section.dataset.gateways || "[]");
    const limit = Number(section.dataset.maxBytes) || 256 * 1024 * 1024;
    const expected = String(section.dataset.sha256).toLowerCase();
    if (!window.crypto || !crypto.subtle) {
      setVerdict(verdict, "cannot verify here: this browser offers WebCrypto only on https or localhost pages", "unverifiable");
      return;
    }
    if (!gateways.length) {
      setVerdict(verdict, "not retrievable: no gateway is known for this result (start the explorer with --gateway URL)", "unretrievable");
      return;
    }
    let mismatch = null;
    for (const gateway of gateways) {
      const item = el("li", gateway + ": fetching…");
      attempts.append(item);
      try {
        const got = await FramecastVerify.fetchVerified(gateway, section.dataset.cidHex, "", limit, TIMEOUT_MS);
        const video = FramecastVerify.fileBytes(got.blocks, FramecastVerify.entry(got.blocks, got.root, "video.mp4"), limit);
        const digest = await FramecastVerify.sha256Hex(video);
        if (digest !== expected) {
          throw new FramecastVerify.Bad("video.mp4 hashes to " + digest + ", the chain says " + expected);
        }
        item.textContent = gateway + ": " + got.count + " blocks verified, video sha256 matches the chain";
        try {
          showReceipt(receipt, FramecastVerify.fileBytes(got.blocks, FramecastVerify.entry(got.blocks, got.root, "receipt.json"), 1 << 20));
        } catch (e) { receipt.replaceChildren(el("dt", "receipt"), el("dd", String(e.message))); }
        try {
          const jpeg = FramecastVerify.fileBytes(got.blocks, FramecastVerify.entry(got.blocks, got.root, "poster.jpg"), limit);
          poster.src = URL.createObjectURL(new Blob([jpeg], { type: "image/jpeg" }));
          player.poster = poster.src;
        } catch (e) { /* a result without a poster still plays */ }
        player.src = URL.createObjectURL(new Blob([video], { type: "video/mp4" }));
        player.hidden = false;
        setVerdict(verdict, "verified ✓ — every block matches the chain's CID and the video's sha256 matches the chain (from " + gateway + ")", "verified");
        player.play().catch(() => {});
        return;
      } catch (e) {
        if (e instanceof FramecastVerify.Bad) {
          mismatch = e.message;
          item.textContent = gateway + ": NOT VERIFIED: " + e.message;
        } else {
          item.textContent = gateway + ": not retrievable (" + (e.name === "AbortError" ? "timed out" : e.message) + ")";
        }
      }
    }
    if (mismatch) setVerdict(verdict, "not verified ✗ — " + mismatch + "; the video is not shown", "mismatch");
    else setVerdict(verdict, "not retrievable: no gateway answered with this result", "unretrievable");
  }

  async function verifyPoster(card) {
    const img = card.querySelector("[data-role=poster]");
    const placeholder = card.querySelector("[data-role=placeholder]");
    const gateways = JSON.parse(card.dataset.gateways || "[]");
    if (!window.crypto || !crypto.subtle) return;
    for (const gateway of gateways) {
      try {
        const got = await FramecastVerify.fetchVerified(gateway, card.dataset.cidHex, "/poster.jpg", 8 << 20, TIMEOUT_MS);
        const jpeg = FramecastVerify.fileBytes(got.blocks, FramecastVerify.entry(got.blocks, got.root, "poster.jpg"), 8 << 20);
        img.src = URL.createObjectURL(new Blob([jpeg], { type: "image/jpeg" }));
        img.hidden = false;
        card.dataset.verdict = "verified";
        if (placeholder) placeholder.hidden = true;
        return;
      } catch (e) {
        card.dataset.verdict = e instanceof FramecastVerify.Bad ? "mismatch" : "unretrievable";
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    follow();
    document.querySelectorAll("section.verify").forEach((s) => { verifySection(s); });
    document.querySelectorAll("figure.verify-poster").forEach((c) => { verifyPoster(c); });
  });
})();
