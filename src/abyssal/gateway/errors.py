"""One table from the engine's business outcomes to Kraken's exact error strings."""

from __future__ import annotations

from abyssal.core.instruments import Pair
from abyssal.core.messages import CloseReason, Reject

REJECT_TEXT: dict[Reject, str] = {
    Reject.unknown_pair: "EQuery:Unknown asset pair",
    Reject.unknown_asset: "EQuery:Unknown asset",
    Reject.unknown_order: "EOrder:Unknown order",
    Reject.insufficient_funds: "EOrder:Insufficient funds",
    Reject.volume_below_minimum: "EOrder:Order minimum not met",
    Reject.cost_below_minimum: "EOrder:Cost minimum not met",
    Reject.invalid_price_precision: "EOrder:Invalid price",
    Reject.invalid_volume: "EGeneral:Invalid arguments:volume",
    Reject.invalid_price: "EOrder:Invalid price:Invalid price argument",
    Reject.tick_size: "EOrder:Tick size check failed",
    Reject.duplicate_cl_ord_id: "EOrder:Duplicate cl_ord_id",
    Reject.market_cancel_only: "EService:Market in cancel_only mode",
    Reject.market_post_only: "EService:Market in post_only mode",
    Reject.market_limit_only: "EService:Market in limit_only mode",
    Reject.market_unavailable: "EService:Unavailable",
    Reject.invalid_arguments: "EGeneral:Invalid arguments",
    Reject.orders_limit: "EOrder:Orders limit exceeded",
    Reject.invalid_amount: "EFunding:Invalid amount",
    Reject.not_amendable: "EOrder:Invalid order",
    Reject.post_only_would_take: "EOrder:Post only order",
    Reject.no_last_price: "EOrder:Invalid price:No last trade price for a relative price",
}

CLOSE_REASON_TEXT: dict[CloseReason, str | None] = {
    CloseReason.filled: None,
    CloseReason.user_requested: "User requested",
    CloseReason.ioc_remainder: "Immediate or cancel",
    CloseReason.post_only: "Post only order",
    CloseReason.self_trade: "Self trade prevented",
    CloseReason.expired: "Order expired",
    CloseReason.dead_mans_switch: "Dead man's switch",
    CloseReason.market_protection: "Market price protection",
    CloseReason.no_liquidity: "No liquidity",
    CloseReason.insufficient_funds: "Insufficient funds",
    CloseReason.amended_below_filled: "Amended below executed volume",
    CloseReason.replaced: "Order replaced",
    CloseReason.mode_refused: "Market not accepting this order type",
}


def reject_text(reason: int, detail: str = "", pair: Pair | None = None) -> str:
    """Kraken's string for a rejection; ``detail`` names the field where Kraken does."""
    r = Reject(reason)
    if r == Reject.invalid_arguments and detail:
        return f"EGeneral:Invalid arguments:{detail}"
    if r == Reject.invalid_price and detail == "price2":
        return "EOrder:Invalid price:Invalid secondary price argument"
    if r == Reject.invalid_price_precision and pair is not None:
        return (
            f"EOrder:Invalid price:{pair.id} price can only be specified up to {pair.pair_decimals} decimals."
        )
    return REJECT_TEXT[r]
