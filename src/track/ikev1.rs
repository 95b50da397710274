//! The IKEv1 state machine (RFC 2408, RFC 2409): Main Mode (6 messages) or Aggressive
//! Mode (3) for phase 1, Quick Mode (3 messages, one exchange per message ID) for each
//! child SA, Informational exchanges (Delete, notifies, DPD of RFC 3706) and the rest
//! (Transaction / ModeCfg) as plain request/response pairs.
//!
//! IKEv1 headers carry no initiator or response flag: the sender is found from the
//! addresses (the initiator sent the first message, the one with a zero responder
//! cookie), and a Quick Mode's requester is whoever sent its first message.
//!
//! Everything after phase 1 is encrypted whole, without even the first payload's type in
//! the clear: without keys an Informational's Deletes and notifies stay unread, so an SA
//! closed by encrypted Deletes still shows as established (unless the Informational
//! answers MM5 or a Quick Mode, which reads as a refusal).

use tracing::debug;

use super::report::{spi64, Failure};

use super::ike::{
    add_child, apply_deletes, detail, v1_failure_code, Counters, Effect, Exchange, IkeSa, MsgCtx,
};

/// Aggressive Mode.
const AGGRESSIVE: u8 = 4;
/// Informational.
const INFORMATIONAL: u8 = 5;
/// Quick Mode.
const QUICK: u8 = 32;
/// DPD R-U-THERE (RFC 3706 §5).
const R_U_THERE: u16 = 36136;
/// DPD R-U-THERE-ACK.
const R_U_THERE_ACK: u16 = 36137;

/// One IKEv1 message of `sa`.
pub(crate) fn on_message(
    sa: &mut IkeSa,
    ctx: &MsgCtx<'_>,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    sa.touch(ctx);
    let h = &ctx.msg.header;
    if sa.spi_r == 0 && h.spi_r != 0 {
        sa.spi_r = h.spi_r;
    }
    let progressed = match h.exchange_type {
        1..=4 if h.message_id == 0 => phase1(sa, ctx),
        QUICK => quick(sa, ctx, counters, fx),
        INFORMATIONAL => informational(sa, ctx, counters, fx),
        _ => other(sa, ctx),
    };
    if progressed {
        error_notifies(sa, ctx);
    }
}

/// A phase-1 message; `false` when it was a retransmission.
fn phase1(sa: &mut IkeSa, ctx: &MsgCtx<'_>) -> bool {
    let kind = ctx.msg.header.exchange_type;
    let repeat = sa
        .exchanges
        .iter()
        .rposition(|e| e.message_id == 0 && e.kind == kind && e.is_repeat(ctx.hash));
    if let Some(i) = repeat {
        sa.retransmitted(i, ctx, ctx.from_initiator);
        return false;
    }
    sa.v1.aggressive = kind == AGGRESSIVE;
    let open = sa
        .exchanges
        .iter()
        .rposition(|e| e.message_id == 0 && e.kind == kind);
    if ctx.from_initiator {
        sa.v1.init_msgs = sa.v1.init_msgs.saturating_add(1);
        match open.filter(|_| sa.v1.aggressive && sa.v1.init_msgs >= 2) {
            // AM3 completes the first exchange rather than opening a new one.
            Some(i) => add_request_message(sa, i, ctx),
            None => {
                sa.push_exchange(Exchange::request(ctx, true));
            }
        }
    } else {
        sa.v1.resp_msgs = sa.v1.resp_msgs.saturating_add(1);
        match open.filter(|&i| sa.exchanges[i].response.is_none()) {
            Some(i) => {
                sa.exchanges[i].respond(ctx);
            }
            None => {
                sa.push_exchange(Exchange::orphan_response(ctx, true));
            }
        }
    }
    sa.progress(ctx.frame);
    phase1_done(sa, ctx);
    true
}

fn add_request_message(sa: &mut IkeSa, i: usize, ctx: &MsgCtx<'_>) {
    let ex = &mut sa.exchanges[i];
    ex.req_hashes.add(ctx.hash);
    ex.req_msgs = ex.req_msgs.saturating_add(1);
    ex.note(ctx);
}

fn phase1_done(sa: &mut IkeSa, ctx: &MsgCtx<'_>) {
    let v = &sa.v1;
    let done = if v.aggressive {
        v.init_msgs >= 2 && v.resp_msgs >= 1
    } else {
        v.init_msgs >= 3 && v.resp_msgs >= 3
    };
    if done && sa.v1.done.is_none() {
        sa.v1.done = Some(ctx.frame);
        debug!(spi_i = %spi64(sa.spi_i), frame = ctx.frame, "IKEv1 phase 1 complete");
    }
}

/// A Quick Mode message; `false` when it was a retransmission.
fn quick(sa: &mut IkeSa, ctx: &MsgCtx<'_>, counters: &mut Counters, fx: &mut Vec<Effect>) -> bool {
    let msgid = ctx.msg.header.message_id;
    let Some(i) = sa
        .exchanges
        .iter()
        .rposition(|e| e.kind == QUICK && e.message_id == msgid)
    else {
        counters.quick_modes += 1;
        sa.push_exchange(Exchange::request(ctx, ctx.from_initiator));
        sa.progress(ctx.frame);
        return true;
    };
    let ex = &mut sa.exchanges[i];
    let from_requester = ex.by_initiator == ctx.from_initiator;
    if ex.is_repeat(ctx.hash) {
        sa.retransmitted(i, ctx, from_requester);
        return false;
    }
    if !from_requester {
        ex.respond(ctx);
    } else {
        add_request_message(sa, i, ctx);
        // QM3: the requester's second message makes the child SA usable (RFC 2409 §5.5).
        if sa.exchanges[i].req_msgs == 2 {
            add_child(sa, i, ctx.ts, counters, fx);
            sa.establish(ctx.frame, ctx.ts);
        }
    }
    sa.progress(ctx.frame);
    true
}

/// An Informational message; `false` when it was a retransmission.
fn informational(
    sa: &mut IkeSa,
    ctx: &MsgCtx<'_>,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) -> bool {
    let msgid = ctx.msg.header.message_id;
    let repeat = sa
        .exchanges
        .iter()
        .rposition(|e| e.kind == INFORMATIONAL && e.message_id == msgid && e.is_repeat(ctx.hash));
    if let Some(i) = repeat {
        sa.retransmitted(i, ctx, true);
        return false;
    }
    if ctx.notifies().any(|n| n == R_U_THERE_ACK) {
        if let Some(i) = open_dpd(sa, !ctx.from_initiator) {
            sa.exchanges[i].respond(ctx);
            return true;
        }
    }
    let i = sa.push_exchange(Exchange::request(ctx, ctx.from_initiator));
    if ctx.notifies().any(|n| n == R_U_THERE) {
        detail(sa, i, "DPD R-U-THERE (RFC 3706)".to_string());
    }
    apply_deletes(sa, i, ctx.msg, counters, fx);
    quick_mode_refused(sa, ctx);
    let v = &sa.v1;
    let stuck_after_mm5 = !v.aggressive && v.init_msgs >= 3 && v.resp_msgs == 2;
    if !ctx.from_initiator && stuck_after_mm5 && v.done.is_none() && v.info_after_mm5.is_none() {
        sa.v1.info_after_mm5 = Some(ctx.frame);
        let what = "responder answered MM5 with an Informational, not MM6: it could not \
                    decrypt MM5 (preshared keys differ)";
        detail(sa, i, what.to_string());
        debug!(spi_i = %spi64(sa.spi_i), frame = ctx.frame, "responder answered MM5 with an Informational");
    }
    true
}

/// An encrypted Informational from the responder of an unanswered Quick Mode, soon after
/// its request: a refusal in place of QM2 (RFC 2409 §5.5 leaves the error notify as the
/// only answer). A DPD message that happens to fall in that second looks the same.
fn quick_mode_refused(sa: &mut IkeSa, ctx: &MsgCtx<'_>) {
    const WITHIN_NS: i64 = 2_000_000_000;
    let encrypted = ctx.msg.header.flags & 1 != 0;
    let open = sa.exchanges.iter().rposition(|e| {
        e.kind == QUICK
            && e.response.is_none()
            && e.by_initiator != ctx.from_initiator
            && e.transmissions
                .iter()
                .any(|&(_, t, _)| (0..=WITHIN_NS).contains(&(ctx.ts.0 - t.0)))
    });
    let Some(q) = open.filter(|_| encrypted && !ctx.has_decrypted()) else {
        return;
    };
    if sa.v1.qm_refused.is_none() && sa.established.is_none() {
        sa.v1.qm_refused = Some(ctx.frame);
        debug!(spi_i = %spi64(sa.spi_i), frame = ctx.frame, "Quick Mode answered by an Informational");
    }
    let what = "answered by an encrypted Informational instead of QM2 (a refusal)";
    detail(sa, q, what.to_string());
}

/// The latest unanswered R-U-THERE sent by the initiator (`by_init`) or the responder.
fn open_dpd(sa: &IkeSa, by_init: bool) -> Option<usize> {
    sa.exchanges.iter().rposition(|e| {
        e.kind == INFORMATIONAL
            && e.by_initiator == by_init
            && e.response.is_none()
            && e.notifies.contains(&R_U_THERE)
    })
}

/// Transaction (ModeCfg), New Group and anything else: request/response by message ID.
fn other(sa: &mut IkeSa, ctx: &MsgCtx<'_>) -> bool {
    let h = &ctx.msg.header;
    let found = sa
        .exchanges
        .iter()
        .rposition(|e| e.kind == h.exchange_type && e.message_id == h.message_id);
    let Some(i) = found else {
        sa.push_exchange(Exchange::request(ctx, ctx.from_initiator));
        return true;
    };
    let ex = &mut sa.exchanges[i];
    if ex.is_repeat(ctx.hash) {
        let from_requester = ex.by_initiator == ctx.from_initiator;
        sa.retransmitted(i, ctx, from_requester);
        return false;
    }
    if ex.by_initiator == ctx.from_initiator {
        add_request_message(sa, i, ctx);
    } else {
        ex.respond(ctx);
    }
    true
}

/// Error notifies (types below 8192, RFC 2408 §3.14.1) end a negotiation that has no
/// usable child SA yet; later progress undoes it (see [`IkeSa::progress`]).
fn error_notifies(sa: &mut IkeSa, ctx: &MsgCtx<'_>) {
    if sa.established.is_some() {
        return;
    }
    let found = ctx
        .notifies()
        .filter(|&n| n < 8192)
        .find_map(|n| v1_failure_code(n).map(|c| (n, c)));
    let Some((n, code)) = found else {
        return;
    };
    if sa.v1.info_after_mm5 == Some(ctx.frame) && matches!(n, 1 | 16) {
        return sa.fail(unreadable_mm5(n, ctx.frame));
    }
    sa.fail(Failure::notified(code, n, ctx.frame));
}

/// INVALID-PAYLOAD-TYPE or PAYLOAD-MALFORMED (seen once decrypted) in answer to MM5: the
/// responder could not decrypt MM5, which is what differing preshared keys do. The
/// notify is explicit; that it means a key mismatch is still a reading of it.
fn unreadable_mm5(notify: u16, frame: u64) -> Failure {
    let name = if notify == 16 {
        "PAYLOAD-MALFORMED"
    } else {
        "INVALID-PAYLOAD-TYPE"
    };
    Failure {
        notify_type: Some(notify),
        ..Failure::inferred(
            "auth-failed",
            frame,
            0.95,
            format!(
                "the responder answered MM5 with {name}: it could not decrypt MM5, which \
                 happens when the preshared keys differ"
            ),
        )
    }
}
