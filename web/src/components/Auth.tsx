import { useState, type FormEvent } from "react";
import { ApiError, webCall, type Me } from "../api";

export function Auth({ onAuth, initialMode }: { onAuth: (m: Me) => void; initialMode: "login" | "signup" }) {
  const [mode, setMode] = useState(initialMode);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    setBusy(true);
    try {
      onAuth(await webCall<Me>("POST", mode, { email, password }));
    } catch (err) {
      const ae = err instanceof ApiError ? err : new ApiError(String(err));
      setErrors({ [ae.field || "form"]: ae.message });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel auth" aria-labelledby="auth-title">
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={mode === "login"} onClick={() => setMode("login")}>
          Log in
        </button>
        <button type="button" role="tab" aria-selected={mode === "signup"} onClick={() => setMode("signup")}>
          Sign up
        </button>
      </div>
      <h1 id="auth-title">{mode === "login" ? "Log in" : "Create an account"}</h1>
      <form onSubmit={submit} noValidate>
        <label>
          Email
          <input
            name="email"
            type="email"
            autoComplete="email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            aria-invalid={!!errors.email}
            aria-describedby="email-error"
          />
        </label>
        <p id="email-error" className="field-error" role="alert">
          {errors.email}
        </p>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === "login" ? "current-password" : "new-password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-invalid={!!errors.password}
            aria-describedby="password-error"
          />
        </label>
        <p id="password-error" className="field-error" role="alert">
          {errors.password}
        </p>
        {mode === "signup" && <p className="muted small">At least 10 characters.</p>}
        <p className="field-error" role="alert">
          {errors.form}
        </p>
        <button type="submit" className="primary" disabled={busy}>
          {mode === "login" ? "Log in" : "Sign up"}
        </button>
      </form>
    </section>
  );
}
