import { useEffect, useMemo, useRef, useState } from "react";
import { privateCall, publicCall, type Me } from "../api";
import { useMarket, usePoll } from "../hooks";
import { v2Symbol } from "../ws";
import { positive } from "../format";
import { withIds, type AssetInfo, type Depth, type Ticker } from "../market";
import type { PairInfo } from "../validate";
import { Account, available, type Balances } from "./Account";
import { Book, Chart, PairList, Tape } from "./Market";
import { OrderForm } from "./OrderForm";

function initialPair(): string {
  return new URLSearchParams(window.location.search).get("pair") ?? localStorage.getItem("abyssal-pair") ?? "";
}

export function Trade(props: { me: Me | null; setMe: (m: Me) => void; onLogin: () => void; theme: string }) {
  const { me, setMe, onLogin, theme } = props;
  const [pairs, setPairs] = useState<PairInfo[]>([]);
  const [assets, setAssets] = useState<Record<string, AssetInfo>>({});
  const [selected, setSelected] = useState(initialPair);
  const [picked, setPicked] = useState("");
  const [version, setVersion] = useState(0);
  const [loadError, setLoadError] = useState("");
  const bump = () => setVersion((v) => v + 1);

  useEffect(() => {
    Promise.all([publicCall<Record<string, PairInfo>>("AssetPairs"), publicCall<Record<string, AssetInfo>>("Assets")])
      .then(([ps, as]) => {
        const list = withIds(ps);
        setPairs(list);
        setAssets(Object.fromEntries(withIds(as).map((a) => [a.id, a])));
        setSelected((s) => (list.some((p) => p.id === s || p.altname === s) ? s : list[0]?.id ?? ""));
      })
      .catch((e) => setLoadError(String(e.message ?? e)));
  }, []);

  const pair = pairs.find((p) => p.id === selected || p.altname === selected);
  useEffect(() => {
    if (pair) localStorage.setItem("abyssal-pair", pair.id);
  }, [pair]);

  const market = useMarket(pair, pairs);
  const wsLive = !!market?.live;
  const liveRef = useRef(false);
  liveRef.current = wsLive;
  // REST is the fallback while the socket is down: polls skip the network when it is live
  const restTickers = usePoll(
    async () => (liveRef.current ? null : await publicCall<Record<string, Ticker>>("Ticker")),
    3000,
    [],
  ).data;
  const tickers = useMemo(() => {
    if (!wsLive || !market) return restTickers;
    const out: Record<string, Ticker> = {};
    for (const p of pairs) {
      const t = market.tickers[v2Symbol(p.wsname)];
      if (t) out[p.id] = t;
    }
    return out;
  }, [wsLive, market, restTickers, pairs]);
  const balances = usePoll<Balances | null>(
    async () => (me ? await privateCall<Balances>("BalanceEx") : null),
    3000,
    [me?.email, version],
  ).data;
  const restTop = usePoll(
    async () =>
      pair && !liveRef.current ? (await publicCall<Record<string, Depth>>("Depth", { pair: pair.id, count: 1 }))[pair.id] : null,
    2000,
    [pair?.id],
  ).data;
  const top = wsLive && market?.book ? market.book : restTop;

  const funds = useMemo(
    () => ({
      availableQuote: pair ? available(balances?.[pair.quote]) : "0",
      availableBase: pair ? available(balances?.[pair.base]) : "0",
      bestAsk: top?.asks[0]?.[0],
      bestBid: top?.bids[0]?.[0],
    }),
    [balances, pair, top],
  );

  if (loadError) return <p className="field-error pad">The market list did not load: {loadError}</p>;
  if (!pair) return <p className="muted pad">Loading markets…</p>;
  const t = tickers?.[pair.id];
  const traded = positive(t?.v[1]); // no trades in the window: high/low are 0.0 on the wire
  return (
    <div className="trade">
      <div className="ticker-bar" aria-live="off">
        <strong>{pair.wsname}</strong>
        <span>Last {t && t.v[1] !== "0" && Number(t.c[0]) > 0 ? t.c[0] : "–"}</span>
        <span className="muted">24h high {t && traded && positive(t.h[1]) ? t.h[1] : "–"}</span>
        <span className="muted">24h low {t && traded && positive(t.l[1]) ? t.l[1] : "–"}</span>
        <span className="muted">24h volume {t ? t.v[1] : "–"}</span>
      </div>
      <PairList pairs={pairs} tickers={tickers} selected={pair.id} onSelect={setSelected} />
      <Chart pair={pair} theme={theme} market={market} />
      <Book pair={pair} onPrice={setPicked} market={market} />
      <Tape pair={pair} market={market} />
      {me ? (
        <>
          <OrderForm pair={pair} funds={funds} pickedPrice={picked} onPlaced={bump} />
          <Account pairs={pairs} assets={assets} balances={balances} version={version} bump={bump} me={me} setMe={setMe} />
        </>
      ) : (
        <section className="panel order-form login-cta">
          <p>Log in or sign up to trade.</p>
          <button type="button" className="primary" onClick={onLogin}>
            Log in
          </button>
        </section>
      )}
    </div>
  );
}
