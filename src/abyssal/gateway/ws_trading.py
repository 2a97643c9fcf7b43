"""WebSocket v2 trading methods: token and permission check, dispatch, Kraken's WS replies.

Handlers live in ``ws_placing`` (add, batch add, amend, edit) and ``ws_cancels``; they run the same
engine commands as REST. Rejections map through the one table in ``gateway/errors.py``; ``error``
is a string here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import structlog

from abyssal.gateway import ws_cancels as cancels
from abyssal.gateway import ws_placing as placing
from abyssal.gateway.auth import Permission
from abyssal.gateway.keys import ApiKey
from abyssal.gateway.params import ParamError
from abyssal.gateway.ws_codec import Json, Reply
from abyssal.gateway.ws_order_params import FieldError
from abyssal.gateway.ws_tokens import TokenError
from abyssal.runtime.sequencer import Busy, Unavailable, Unjournalable

if TYPE_CHECKING:
    from abyssal.gateway.ws_session import Session

log = structlog.get_logger("abyssal.ws")

Handler = Callable[["Session", ApiKey, Json, Reply], Awaitable[list[bytes]]]


async def run(session: Session, method: str, params: Json, reply: Reply) -> None:
    """Run one trading request and send its replies (never raises for client mistakes)."""
    try:
        key = session.authorize(params.get("token"), PERMISSIONS[method])
        frames = await HANDLERS[method](session, key, params, reply)
    except TokenError as err:
        frames = [reply.error(err.text)]
    except ParamError as err:
        frames = [reply.error(err.kraken)]
    except FieldError as err:
        frames = [reply.error(err.text)]
    except Busy:
        frames = [reply.error("EService:Busy")]
    except Unavailable:
        frames = [reply.error("EService:Unavailable")]
    except Unjournalable:
        frames = [reply.error("EGeneral:Invalid arguments")]
    except Exception as exc:  # a fault: logged, never a traceback to the client
        log.exception("ws_trading_failed", method=method, error=repr(exc))
        frames = [reply.error("EGeneral:Internal error")]
    for frame in frames:
        session.send(frame)


HANDLERS: Final[dict[str, Handler]] = {
    "add_order": placing.add_order,
    "amend_order": placing.amend_order,
    "edit_order": placing.edit_order,
    "cancel_order": cancels.cancel_order,
    "cancel_all": cancels.cancel_all,
    "cancel_all_orders_after": cancels.cancel_all_orders_after,
    "batch_add": placing.batch_add,
    "batch_cancel": cancels.batch_cancel,
}
PERMISSIONS: Final[dict[str, Permission]] = {
    "add_order": Permission.CREATE_ORDERS,
    "amend_order": Permission.CREATE_ORDERS,
    "edit_order": Permission.CREATE_ORDERS,
    "cancel_order": Permission.CANCEL_ORDERS,
    "cancel_all": Permission.CANCEL_ORDERS,
    "cancel_all_orders_after": Permission.CANCEL_ORDERS,
    "batch_add": Permission.CREATE_ORDERS,
    "batch_cancel": Permission.CANCEL_ORDERS,
}
