//! The IKEv2 state machine (RFC 7296): IKE_SA_INIT with its COOKIE and
//! INVALID_KE_PAYLOAD retries, IKE_AUTH, CREATE_CHILD_SA and INFORMATIONAL.
//!
//! Requests and responses are told apart by the R flag and their sender by the I flag
//! (§3.1), never by who spoke first: the responder may start exchanges too. Each side
//! numbers its own requests (§2.2), so an exchange is identified by message ID and the
//! side that sent the request.

use tracing::debug;

use super::report::spi64;

use super::ike::{
    add_child, apply_deletes, detail, v2_failure_code, Counters, Effect, Exchange, IkeSa, MsgCtx,
};

/// IKE_SA_INIT.
const IKE_SA_INIT: u8 = 34;
/// IKE_AUTH.
const IKE_AUTH: u8 = 35;
/// CREATE_CHILD_SA.
const CREATE_CHILD_SA: u8 = 36;
/// INFORMATIONAL.
const INFORMATIONAL: u8 = 37;
/// COOKIE notify (§2.6).
const COOKIE: u16 = 16390;
/// INVALID_KE_PAYLOAD notify (§1.3).
const INVALID_KE_PAYLOAD: u16 = 17;
/// AUTHENTICATION_FAILED notify.
const AUTHENTICATION_FAILED: u16 = 24;

/// Smallest SK payload body (IV, ciphertext, ICV) that can hold IDr and AUTH: about 36
/// bytes of plaintext even with the smallest identity and a 16-byte MAC, plus the
/// smallest IV and ICV in use (8 + 8, AES-GCM with a 64-bit tag). A shorter IKE_AUTH
/// response carries an error notify alone (strongSwan's AUTHENTICATION_FAILED response
/// is 48 bytes of SK data; its successful ones are over 200).
pub(crate) const MIN_SK_WITH_AUTH: usize = 53;

/// One IKEv2 message of `sa`.
pub(crate) fn on_message(
    sa: &mut IkeSa,
    ctx: &MsgCtx<'_>,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    sa.touch(ctx);
    if ctx.msg.header.is_response() {
        on_response(sa, ctx, counters, fx);
    } else {
        on_request(sa, ctx, counters, fx);
    }
}

fn on_request(sa: &mut IkeSa, ctx: &MsgCtx<'_>, counters: &mut Counters, fx: &mut Vec<Effect>) {
    let h = &ctx.msg.header;
    let by_init = ctx.from_initiator;
    if let Some(i) = sa.find_exchange(Some(h.exchange_type), h.message_id, by_init) {
        let ex = &sa.exchanges[i];
        if ex.req_hashes.contains(ctx.hash) {
            // One retransmission of a fragmented message resends every fragment.
            if ctx.fragment().is_none_or(|(n, _)| n == 1) {
                sa.retransmitted(i, ctx, true);
            }
            return;
        }
        let retry = h.exchange_type == IKE_SA_INIT && ex.response.is_some();
        if !retry && (ex.response.is_none() || ctx.fragment().is_some()) {
            let ex = &mut sa.exchanges[i];
            ex.req_hashes.add(ctx.hash);
            ex.request_len = ex.request_len.max(ctx.len);
            ex.last_request_frame = ctx.frame;
            ex.note(ctx);
            if let Some((_, total)) = ctx.fragment() {
                ex.detail(format!("sent as {total} IKE fragments (RFC 7383)"));
            }
            return;
        }
    }
    let i = sa.push_exchange(Exchange::request(ctx, by_init));
    new_request(sa, i, ctx, counters, fx);
}

fn new_request(
    sa: &mut IkeSa,
    i: usize,
    ctx: &MsgCtx<'_>,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    match ctx.msg.header.exchange_type {
        IKE_SA_INIT if sa.exchanges.len() > 1 => {
            sa.init_retries += 1;
            sa.awaiting_retry = false;
            sa.progress(ctx.frame);
        }
        IKE_AUTH => {
            if sa.exchanges.iter().filter(|e| e.kind == IKE_AUTH).count() == 1 {
                counters.quick_modes += 1;
            }
            another_auth_round(sa, ctx);
        }
        CREATE_CHILD_SA => {
            sa.post_auth = true;
            counters.quick_modes += 1;
        }
        INFORMATIONAL => {
            sa.post_auth = true;
            apply_deletes(sa, i, ctx.msg, counters, fx);
            // The initiator rejecting the responder's AUTH says so in an INFORMATIONAL
            // request (RFC 7296 §2.21.2), visible once decrypted.
            if ctx.notifies().any(|n| n == AUTHENTICATION_FAILED) {
                sa.fail("auth-failed", Some(AUTHENTICATION_FAILED), ctx.frame);
            }
        }
        _ => {}
    }
}

/// A further IKE_AUTH request after a response (EAP, RFC 7296 §2.16): the earlier
/// response did not finish authentication.
fn another_auth_round(sa: &mut IkeSa, ctx: &MsgCtx<'_>) {
    sa.auth_suspect = None;
    if sa.post_auth || sa.established.is_none() {
        return;
    }
    sa.established = None;
    sa.children
        .retain(|c| c.spi_in.is_some() || c.spi_out.is_some());
    sa.open_slots = [0, 0];
    sa.set_state(
        super::report::IkeState::Negotiating,
        ctx.frame,
        "another IKE_AUTH round",
    );
}

fn on_response(sa: &mut IkeSa, ctx: &MsgCtx<'_>, counters: &mut Counters, fx: &mut Vec<Effect>) {
    let h = &ctx.msg.header;
    let by_init = !ctx.from_initiator;
    let Some(i) = sa.find_exchange(Some(h.exchange_type), h.message_id, by_init) else {
        let i = sa.push_exchange(Exchange::orphan_response(ctx, by_init));
        return new_response(sa, i, ctx, counters, fx);
    };
    let ex = &mut sa.exchanges[i];
    if ex.response.is_none() {
        ex.respond(ctx);
        return new_response(sa, i, ctx, counters, fx);
    }
    if !ex.resp_hashes.contains(ctx.hash) {
        // Another fragment of the response, or an altered copy: nothing new happened.
        ex.resp_hashes.add(ctx.hash);
        ex.note(ctx);
    } else if ctx.fragment().is_none_or(|(n, _)| n == 1) {
        sa.retransmitted(i, ctx, false);
    }
}

fn new_response(
    sa: &mut IkeSa,
    i: usize,
    ctx: &MsgCtx<'_>,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    let errors: Vec<u16> = ctx.notifies().filter(|&n| n < 16384).collect();
    match ctx.msg.header.exchange_type {
        IKE_SA_INIT => init_response(sa, i, ctx, &errors),
        IKE_AUTH => auth_response(sa, i, ctx, &errors, counters, fx),
        CREATE_CHILD_SA => child_response(sa, i, ctx, &errors, counters, fx),
        INFORMATIONAL => {
            apply_deletes(sa, i, ctx.msg, counters, fx);
            confirm_up(sa, counters, fx);
        }
        _ => {}
    }
}

fn init_response(sa: &mut IkeSa, i: usize, ctx: &MsgCtx<'_>, errors: &[u16]) {
    let frame = ctx.frame;
    if ctx.notifies().any(|n| n == COOKIE) {
        sa.awaiting_retry = true;
        detail(
            sa,
            i,
            "responder asked for a COOKIE (RFC 7296 §2.6)".to_string(),
        );
        debug!(spi_i = %spi64(sa.spi_i), frame, "IKE_SA_INIT answered with COOKIE");
        return;
    }
    if errors.contains(&INVALID_KE_PAYLOAD) {
        sa.awaiting_retry = true;
        if let Some(group) = wanted_group(ctx.msg) {
            let name = super::proposal::dh(group);
            detail(sa, i, format!("responder wants DH group {group} ({name})"));
        }
        sa.pending_failure = Some(super::report::Failure {
            code: "invalid-ke".to_string(),
            notify_type: Some(INVALID_KE_PAYLOAD),
            frame,
        });
        debug!(spi_i = %spi64(sa.spi_i), frame, "IKE_SA_INIT answered with INVALID_KE_PAYLOAD");
        return;
    }
    if let Some((n, code)) = first_failure(errors) {
        return sa.fail(code, Some(n), frame);
    }
    if ctx.msg.header.spi_r != 0 {
        sa.spi_r = ctx.msg.header.spi_r;
    }
    sa.progress(frame);
}

/// The DH group an INVALID_KE_PAYLOAD notify asks for (its 2-byte data, §3.10.1).
fn wanted_group(msg: &crate::wire::ike::IkeMessage) -> Option<u16> {
    msg.payloads.iter().find_map(|p| match &p.body {
        crate::wire::ike::PayloadBody::Notify(n) if n.notify_type == INVALID_KE_PAYLOAD => {
            let d = n.data.get(..2)?;
            Some(u16::from_be_bytes([d[0], d[1]]))
        }
        _ => None,
    })
}

fn first_failure(errors: &[u16]) -> Option<(u16, &'static str)> {
    errors
        .iter()
        .find_map(|&n| v2_failure_code(n).map(|c| (n, c)))
}

fn auth_response(
    sa: &mut IkeSa,
    i: usize,
    ctx: &MsgCtx<'_>,
    errors: &[u16],
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    let frame = ctx.frame;
    if errors.contains(&AUTHENTICATION_FAILED) {
        return sa.fail("auth-failed", Some(AUTHENTICATION_FAILED), frame);
    }
    if let Some((n, code)) = first_failure(errors) {
        // The IKE SA may be up (§1.2: a refused child does not fail it) but no child is.
        return sa.fail(code, Some(n), frame);
    }
    let short = ctx.sk_len().is_some_and(|l| l < MIN_SK_WITH_AUTH);
    if short && !ctx.has_decrypted() && ctx.fragment().is_none() {
        sa.auth_suspect = Some(frame);
        let len = ctx.sk_len().unwrap_or(0);
        let what = format!("response of {len} bytes of SK data is too short for IDr and AUTH");
        detail(sa, i, what);
        debug!(spi_i = %spi64(sa.spi_i), frame, "IKE_AUTH response too short for IDr and AUTH");
        return;
    }
    add_child(sa, i, ctx.ts, counters, fx);
    sa.establish(frame, ctx.ts);
}

fn child_response(
    sa: &mut IkeSa,
    i: usize,
    ctx: &MsgCtx<'_>,
    errors: &[u16],
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    confirm_up(sa, counters, fx);
    if !errors.is_empty() {
        return;
    }
    // A successful answer carries SA, Nonce and TSi/TSr (or KE for an IKE rekey): far
    // more than an error notify alone.
    if ctx.sk_len().is_some_and(|l| l < MIN_SK_WITH_AUTH) && !ctx.has_decrypted() {
        return;
    }
    let ex = &sa.exchanges[i];
    if let (Some(spi_i), Some(spi_r)) = ex.ike_offer {
        counters.rekeys += 1;
        fx.push(Effect::RekeyIke {
            spi_i,
            spi_r,
            by_initiator: ex.by_initiator,
        });
        return;
    }
    add_child(sa, i, ctx.ts, counters, fx);
    sa.establish(ctx.frame, ctx.ts);
}

/// A later exchange answered on the SA (or ESP linked to it) proves that IKE_AUTH
/// succeeded even though its response looked short.
pub(crate) fn confirm_up(sa: &mut IkeSa, counters: &mut Counters, fx: &mut Vec<Effect>) {
    let Some(frame) = sa.auth_suspect.take() else {
        return;
    };
    let Some(i) = sa
        .exchanges
        .iter()
        .position(|e| e.response.is_some_and(|(f, _)| f == frame))
    else {
        return;
    };
    let ts = sa.exchanges[i].response.map_or(sa.last_seen, |(_, t)| t);
    add_child(sa, i, ts, counters, fx);
    sa.establish(frame, ts);
}
