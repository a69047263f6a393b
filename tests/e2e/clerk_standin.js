// A stand-in for Clerk's clerk.browser.js (clerk-js), for tests only: Clerk's servers cannot be reached
// here. tests/e2e/test_web_clerk.py serves it through Playwright's page.route at the exact URL the page
// asks for (https://<Frontend API host>/npm/@clerk/clerk-js@<major>/dist/clerk.browser.js).
//
// It implements the part of the Clerk object the web app uses: load(), user, session.getToken(),
// mountSignIn()/unmountSignIn(), signOut(), addListener(). Like the real script it reads the publishable
// key from its own <script data-clerk-publishable-key> and sets window.Clerk. Its "sign-in" gets a real
// RS256 token from the local stack's dev issuer (POST /dev/token), the token the authorizer checks.
// Like Clerk, getToken() caches the token and fetches a new one when it is about to expire; the test
// says when that is (window.__clerkStandin.expireToken()). The session survives a reload (sessionStorage
// here; a cookie on Clerk's domain in the real thing).
(() => {
  const script = document.currentScript;
  const publishableKey = script && script.getAttribute("data-clerk-publishable-key");
  const STORE = "clerk-standin.session";
  const record = {
    publishableKey,
    scriptSrc: script && script.src,
    crossOrigin: script && script.crossOrigin,
    loadCalls: 0,
    getTokenCalls: 0,
    issued: [], // every token handed out, in order
    mounted: 0,
    signOuts: 0,
  };
  const listeners = new Set();
  let token = null; // the cached session token
  let stale = false; // set by the test: the cached token is about to expire

  async function mint(email) {
    const r = await fetch("/dev/token", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email }),
    });
    if (!r.ok) throw new Error(`/dev/token: HTTP ${r.status}`);
    const body = await r.json();
    record.issued.push(body.token);
    return body;
  }

  function makeSession(id, email) {
    return {
      id,
      async getToken() {
        record.getTokenCalls += 1;
        if (!token || stale) {
          token = (await mint(email)).token;
          stale = false;
        }
        return token;
      },
    };
  }

  const clerk = {
    loaded: false,
    user: null,
    session: null,
    get isSignedIn() { return !!this.user; },

    async load(options) {
      record.loadCalls += 1;
      record.loadOptions = options ?? null;
      if (!publishableKey) throw new Error("clerk stand-in: no data-clerk-publishable-key on its script tag");
      const saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
      if (saved) signedIn(saved);
      this.loaded = true;
    },

    addListener(fn) {
      listeners.add(fn);
      fn(state());
      return () => listeners.delete(fn);
    },

    mountSignIn(el) {
      record.mounted += 1;
      el.replaceChildren();
      const form = document.createElement("form");
      form.className = "clerk-standin-signin";
      form.innerHTML = `<h3>Sign in to Hark (Clerk stand-in)</h3>
        <label>Email address <input name="identifier" type="email" required></label>
        <button type="submit">Continue</button>
        <p class="clerk-standin-error" role="alert"></p>`;
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const email = form.identifier.value.trim();
        try {
          const body = await mint(email);
          token = body.token;
          const user = { id: body.user_id, email: body.email, sid: `sess_standin_${record.issued.length}` };
          sessionStorage.setItem(STORE, JSON.stringify(user));
          signedIn(user);
          emit();
        } catch (e) {
          form.querySelector(".clerk-standin-error").textContent = e.message;
        }
      });
      el.append(form);
    },

    unmountSignIn(el) {
      el.replaceChildren();
    },

    async signOut(callbackOrOptions) {
      record.signOuts += 1;
      sessionStorage.removeItem(STORE);
      token = null;
      this.user = null;
      this.session = null;
      emit();
      if (typeof callbackOrOptions === "function") await callbackOrOptions();
      else location.assign(callbackOrOptions?.redirectUrl || "/"); // Clerk's default: afterSignOutUrl
    },
  };

  function signedIn({ id, email, sid }) {
    clerk.user = { id, primaryEmailAddress: { emailAddress: email }, username: null };
    clerk.session = makeSession(sid, email);
  }

  function state() {
    return { client: {}, session: clerk.session, user: clerk.user, organization: null };
  }

  function emit() {
    for (const fn of listeners) fn(state());
  }

  window.Clerk = clerk;
  window.__clerkStandin = {
    record,
    expireToken() { stale = true; },
  };
})();
