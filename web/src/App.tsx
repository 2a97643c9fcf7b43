import { useCallback, useEffect, useState } from "react";
import { ApiError, setCsrf, webCall, type Me } from "./api";
import { Auth } from "./components/Auth";
import { Keys } from "./components/Keys";
import { Trade } from "./components/Trade";

type Theme = "dark" | "light";

function initialTheme(): Theme {
  const saved = localStorage.getItem("abyssal-theme");
  if (saved === "dark" || saved === "light") return saved;
  return window.matchMedia?.("(prefers-color-scheme: light)").matches ? "light" : "dark";
}

function usePath(): [string, (p: string) => void] {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const on = () => setPath(window.location.pathname);
    window.addEventListener("popstate", on);
    return () => window.removeEventListener("popstate", on);
  }, []);
  const go = useCallback((p: string) => {
    window.history.pushState(null, "", p);
    setPath(p);
  }, []);
  return [path, go];
}

export function App() {
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [me, setMe] = useState<Me | null>(null);
  const [checked, setChecked] = useState(false);
  const [path, go] = usePath();

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("abyssal-theme", theme);
  }, [theme]);

  useEffect(() => {
    webCall<Me>("GET", "me")
      .then((m) => {
        setCsrf(m.csrf);
        setMe(m);
      })
      .catch(() => setMe(null))
      .finally(() => setChecked(true));
  }, []);

  const onAuth = (m: Me) => {
    setCsrf(m.csrf);
    setMe(m);
    if (path === "/login" || path === "/signup") go("/");
  };
  const logout = async () => {
    try {
      await webCall("POST", "logout");
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    setCsrf("");
    setMe(null);
  };

  const page = path.startsWith("/keys") ? "keys" : path === "/login" || path === "/signup" ? "auth" : "trade";
  return (
    <div className="app">
      <header className="top">
        <a
          className="brand"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            go("/");
          }}
        >
          Abyssal
        </a>
        <nav aria-label="Main">
          <a href="/" aria-current={page === "trade" ? "page" : undefined} onClick={(e) => (e.preventDefault(), go("/"))}>
            Trade
          </a>
          <a
            href="/keys"
            aria-current={page === "keys" ? "page" : undefined}
            onClick={(e) => (e.preventDefault(), go("/keys"))}
          >
            API keys
          </a>
        </nav>
        <span className="spacer" />
        <button
          type="button"
          className="ghost"
          aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}
          onClick={() => setTheme(theme === "dark" ? "light" : "dark")}
        >
          {theme === "dark" ? "☀ Light" : "☾ Dark"}
        </button>
        {me ? (
          <>
            <span className="who" data-testid="who">
              {me.email}
            </span>
            <button type="button" className="ghost" onClick={logout}>
              Log out
            </button>
          </>
        ) : (
          <button type="button" onClick={() => go("/login")}>
            Log in
          </button>
        )}
      </header>
      <main>
        {!checked ? (
          <p className="muted pad">Loading…</p>
        ) : page === "auth" || (page === "keys" && !me) ? (
          <Auth onAuth={onAuth} initialMode={path === "/signup" ? "signup" : "login"} />
        ) : page === "keys" && me ? (
          <Keys />
        ) : (
          <Trade me={me} setMe={setMe} onLogin={() => go("/login")} theme={theme} />
        )}
      </main>
    </div>
  );
}
