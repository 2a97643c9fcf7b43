import { useState, type FormEvent } from "react";
import { ApiError, webCall } from "../api";
import { fmtTime } from "../format";
import { usePoll } from "../hooks";

interface Key {
  id: number;
  api_key: string;
  label: string;
  permissions: string[];
  created: number;
}
interface NewKey extends Key {
  api_secret: string;
}

const PERMISSIONS: [string, string][] = [
  ["query_funds", "Query funds"],
  ["query_open", "Query open orders & trades"],
  ["query_closed", "Query closed orders & trades"],
  ["query_ledger", "Query ledger entries"],
  ["create_orders", "Create & modify orders"],
  ["cancel_orders", "Cancel & close orders"],
  ["websocket", "WebSocket interface"],
  ["deposit", "Deposit funds"],
  ["withdraw", "Withdraw funds"],
];

export function Keys() {
  const [version, setVersion] = useState(0);
  const { data, error } = usePoll(async () => (await webCall<{ keys: Key[] }>("GET", "keys")).keys, 30_000, [version]);
  const [label, setLabel] = useState("");
  const [perms, setPerms] = useState<string[]>(["query_funds", "query_open", "query_closed", "create_orders", "cancel_orders"]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [created, setCreated] = useState<NewKey | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    if (!label.trim()) return setErrors({ label: "Name the key." });
    if (!perms.length) return setErrors({ permissions: "Choose at least one permission." });
    try {
      setCreated(await webCall<NewKey>("POST", "keys", { label, permissions: perms }));
      setLabel("");
      setVersion((v) => v + 1);
    } catch (err) {
      const ae = err instanceof ApiError ? err : new ApiError(String(err));
      setErrors({ [ae.field || "form"]: ae.message });
    }
  };
  const revoke = async (k: Key) => {
    if (!window.confirm(`Revoke the key "${k.label}"? Programs using it stop working at once.`)) return;
    try {
      await webCall("DELETE", `keys/${k.id}`);
      setVersion((v) => v + 1);
    } catch (err) {
      setErrors({ list: err instanceof Error ? err.message : String(err) });
    }
  };

  return (
    <div className="keys">
      <section className="panel" aria-labelledby="new-key">
        <h1 id="new-key">New API key</h1>
        <form onSubmit={submit} noValidate>
          <label>
            Name
            <input name="label" value={label} onChange={(e) => setLabel(e.target.value)} maxLength={64} aria-invalid={!!errors.label} aria-describedby="label-error" />
          </label>
          <p id="label-error" className="field-error" role="alert">
            {errors.label}
          </p>
          <fieldset>
            <legend>Permissions</legend>
            {PERMISSIONS.map(([k, text]) => (
              <label key={k} className="check">
                <input
                  type="checkbox"
                  name={k}
                  checked={perms.includes(k)}
                  onChange={(e) => setPerms(e.target.checked ? [...perms, k] : perms.filter((p) => p !== k))}
                />
                {text}
              </label>
            ))}
          </fieldset>
          <p className="field-error" role="alert">
            {errors.permissions ?? errors.form}
          </p>
          <button type="submit" className="primary">
            Create key
          </button>
        </form>
        {created && (
          <div className="secret" role="status" data-testid="new-secret">
            <p>
              <strong>Copy the secret now: it is shown only once.</strong>
            </p>
            <p>
              API key <code data-testid="new-api-key">{created.api_key}</code>
            </p>
            <p>
              Secret <code data-testid="new-api-secret">{created.api_secret}</code>
            </p>
            <button type="button" className="ghost" onClick={() => setCreated(null)}>
              I have copied it
            </button>
          </div>
        )}
      </section>
      <section className="panel" aria-labelledby="your-keys">
        <h1 id="your-keys">Your API keys</h1>
        {(error || errors.list) && <p className="field-error">{error || errors.list}</p>}
        <table className="compact" data-testid="keys">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Key</th>
              <th scope="col">Permissions</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(data ?? []).map((k) => (
              <tr key={k.id} data-key={k.api_key}>
                <td>{k.label}</td>
                <td>
                  <code>{k.api_key.slice(0, 10)}…</code>
                </td>
                <td className="small">{k.permissions.join(", ")}</td>
                <td className="muted">{fmtTime(k.created)}</td>
                <td>
                  <button type="button" className="small danger" onClick={() => revoke(k)}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {data && !data.length && <p className="muted small">No keys yet.</p>}
      </section>
    </div>
  );
}
