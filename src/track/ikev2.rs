//! The IKEv2 state machine (RFC 7296): IKE_SA_INIT with its COOKIE and
//! INVALID_KE_PAYLOAD retries, IKE_AUTH, CREATE_CHILD_SA and INFORMATIONAL.
//!
//! Requests and responses are told apart by the R flag and their sender by the I flag
//! (§3.1), never by who spoke first: the responder may start exchanges too. Each side
//! numbers its own requests (§2.2), so an exchange is identified by message ID and the
//! side that sent the request.

use std::net::{Ipv4Addr, Ipv6Addr};

use tracing::debug;

use crate::wire::ike::PayloadBody;

use super::report::{spi64, Failure, IkeState};

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
/// REDIRECT notify (RFC 5685 §3.3).
const REDIRECT: u16 = 16407;
/// The Notify payload type, as the first payload inside SK.
const NOTIFY: u8 = 41;
/// The Delete payload type.
const DELETE: u8 = 42;
/// An IKE SA's Delete this soon after a CREATE_CHILD_SA that brought no new ESP SPI
/// ends the old SA of an IKE SA rekey (RFC 7296 §2.18), not the connection: the rekeying
/// peer deletes the old SA at once (strongSwan within milliseconds), while a child SA
/// that carries no traffic yet may be torn down by a Delete seconds later.
const REKEY_DELETE_WITHIN_NS: i64 = 2_000_000_000;

/// Smallest SK payload body (IV, ciphertext, ICV) that can hold IDr and AUTH: about 36
/// bytes of plaintext even with the smallest identity and a 16-byte MAC, plus the
/// smallest IV and ICV in use (8 + 8, AES-GCM with a 64-bit tag). A shorter IKE_AUTH
/// response carries an error notify alone (strongSwan's AUTHENTICATION_FAILED response
/// is 48 bytes of SK data; its successful ones are over 200).
pub(crate) const MIN_SK_WITH_AUTH: usize = 53;

/// Smallest SK payload body of an IKE_AUTH response that carries a child SA: IDr (9
/// bytes at least), AUTH (24: HMAC-MD5's 16-byte PSK signature), SA with one proposal and
/// one transform (24), TSi and TSr with one IPv4 range each (24 + 24), the pad length byte,
/// and the smallest IV and ICV in use (8 + 8). strongSwan's successful answers with 3DES
/// and SHA-1 hold 172 bytes; its answers refusing the child, 92.
pub(crate) const MIN_SK_WITH_CHILD: usize = 122;

/// IKE header and SK payload header around the SK data.
const SK_OVERHEAD: usize = 28 + 4;

/// The IDr payload type, as the first payload inside SK.
const ID_R: u8 = 36;

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
            ex.request_len = ex.request_len.max(super::ike::msg_len(ctx));
            ex.last_request_frame = ctx.frame;
            ex.note(ctx);
            if let Some((_, total)) = ctx.fragment() {
                ex.fragments = total;
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
            // A decrypted IKE SA rekey (an IKE proposal) is not a phase-2 negotiation.
            let ike_rekey = sa
                .exchanges
                .get(i)
                .is_some_and(|x| x.ike_offer().0.is_some());
            counters.quick_modes += u64::from(!ike_rekey);
        }
        INFORMATIONAL => {
            sa.post_auth = true;
            apply_deletes(sa, i, ctx.msg, counters, fx);
            // The initiator rejecting the responder's AUTH says so in an INFORMATIONAL
            // request (RFC 7296 §2.21.2), visible once decrypted.
            if ctx.notifies().any(|n| n == AUTHENTICATION_FAILED) {
                sa.fail(Failure::notified(
                    "auth-failed",
                    AUTHENTICATION_FAILED,
                    ctx.frame,
                ));
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
            encrypted_delete(sa, i, ctx, counters, fx);
        }
        _ => {}
    }
}

fn init_response(sa: &mut IkeSa, i: usize, ctx: &MsgCtx<'_>, errors: &[u16]) {
    let frame = ctx.frame;
    if redirected(sa, i, ctx) {
        return;
    }
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
        let failure = Failure::notified("invalid-ke", INVALID_KE_PAYLOAD, frame);
        sa.pending_failure = Some(Box::new(failure));
        debug!(spi_i = %spi64(sa.spi_i), frame, "IKE_SA_INIT answered with INVALID_KE_PAYLOAD");
        return;
    }
    if let Some((n, code)) = first_failure(errors) {
        return sa.fail(Failure::notified(code, n, frame));
    }
    if ctx.msg.header.spi_r != 0 {
        sa.spi_r = ctx.msg.header.spi_r;
    }
    sa.progress(frame);
}

/// A REDIRECT notify in an IKE_SA_INIT or IKE_AUTH response (RFC 5685 §3, §5) ends this
/// SA: the initiator starts over with the gateway it names, as a new IKE SA.
fn redirected(sa: &mut IkeSa, i: usize, ctx: &MsgCtx<'_>) -> bool {
    let Some(data) = ctx.msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Notify(n) if n.notify_type == REDIRECT => Some(n.data.as_slice()),
        _ => None,
    }) else {
        return false;
    };
    let to = gateway(data).unwrap_or_else(|| "another gateway".to_string());
    detail(
        sa,
        i,
        format!("responder redirected the initiator to {to} (RFC 5685)"),
    );
    sa.set_state(
        IkeState::Deleted,
        ctx.frame,
        "redirected to another gateway",
    );
    true
}

/// The new responder of a REDIRECT notify's data (RFC 5685 §9.1: GW Ident Type, GW
/// Ident Len, the identity): an IPv4 or IPv6 address or an FQDN, unprintable bytes
/// shown as `?`.
fn gateway(data: &[u8]) -> Option<String> {
    let (&kind, rest) = data.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let id = rest.get(..usize::from(len))?;
    match kind {
        1 => <[u8; 4]>::try_from(id)
            .ok()
            .map(|a| Ipv4Addr::from(a).to_string()),
        2 => <[u8; 16]>::try_from(id)
            .ok()
            .map(|a| Ipv6Addr::from(a).to_string()),
        3 => Some(
            id.iter()
                .map(|&b| {
                    if b.is_ascii_graphic() {
                        char::from(b)
                    } else {
                        '?'
                    }
                })
                .collect(),
        ),
        _ => None,
    }
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
    if redirected(sa, i, ctx) {
        return;
    }
    if errors.contains(&AUTHENTICATION_FAILED) {
        return sa.fail(Failure::notified(
            "auth-failed",
            AUTHENTICATION_FAILED,
            frame,
        ));
    }
    if let Some((n, code)) = first_failure(errors) {
        // The IKE SA may be up (§1.2: a refused child does not fail it) but no child is.
        return sa.fail(Failure::notified(code, n, frame));
    }
    if auth_too_short(sa, i, ctx) || child_missing(sa, i, ctx) {
        return;
    }
    add_child(sa, i, ctx.ts, counters, fx);
    sa.establish(frame, ctx.ts);
}

/// An encrypted IKE_AUTH response too short to hold IDr and AUTH (RFC 7296 §1.2):
/// an error notify alone, most likely AUTHENTICATION_FAILED. Undone by anything that
/// shows the SA up (see [`confirm_up`]).
fn auth_too_short(sa: &mut IkeSa, i: usize, ctx: &MsgCtx<'_>) -> bool {
    let Some(len) = ctx.sk_len().filter(|&l| l < MIN_SK_WITH_AUTH) else {
        return false;
    };
    if ctx.has_decrypted() || ctx.fragment().is_some() {
        return false;
    }
    let notify_only = ctx.sk_first() == Some(NOTIFY);
    let what = if notify_only {
        format!("response holds a Notify alone ({len} bytes of SK data, too few for IDr and AUTH)")
    } else {
        format!("response of {len} bytes of SK data is too short for IDr and AUTH")
    };
    let reason = "only an error notify fits in that response and nothing followed it: \
                  the responder most likely rejected the authentication \
                  (AUTHENTICATION_FAILED, RFC 7296 §2.21.2)"
        .to_string();
    let confidence = if notify_only { 0.8 } else { 0.6 };
    sa.auth_suspect = Some(Box::new(Failure::inferred(
        "auth-failed",
        ctx.frame,
        confidence,
        reason,
    )));
    detail(sa, i, what);
    debug!(spi_i = %spi64(sa.spi_i), frame = ctx.frame, "IKE_AUTH response too short for IDr and AUTH");
    true
}

/// An encrypted IKE_AUTH response that starts with IDr but has no room for the SA, TSi
/// and TSr payloads of a child SA, answering a request that had room for them: the
/// responder authenticated the initiator and refused the child (RFC 7296 §1.2, the
/// error notify inside), for want of a common proposal or of mirrored filters.
fn child_missing(sa: &mut IkeSa, i: usize, ctx: &MsgCtx<'_>) -> bool {
    let Some(len) = ctx.sk_len().filter(|&l| l < MIN_SK_WITH_CHILD) else {
        return false;
    };
    let ex = &sa.exchanges[i];
    let request_fits =
        ex.fragments > 0 || ex.request_len as usize >= SK_OVERHEAD + MIN_SK_WITH_CHILD;
    if ctx.has_decrypted() || ctx.sk_first() != Some(ID_R) || !request_fits {
        return false;
    }
    let what = format!(
        "response holds IDr and AUTH but no room for a child SA ({len} bytes of SK data): \
         the child SA was refused"
    );
    let reason = "the responder authenticated the initiator but refused the child SA: its \
                  encrypted error is most often NO_PROPOSAL_CHOSEN (no common security \
                  method) or TS_UNACCEPTABLE (filters not mirrored); the session keys tell \
                  which"
        .to_string();
    sa.child_suspect = Some(Box::new(Failure::inferred(
        "negotiation-stalled",
        ctx.frame,
        0.6,
        reason,
    )));
    detail(sa, i, what);
    debug!(spi_i = %spi64(sa.spi_i), frame = ctx.frame, "IKE_AUTH response without a child SA");
    true
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
        if let Some((n, code)) = first_failure(errors) {
            sa.child_refused(Failure::notified(code, n, ctx.frame));
        }
        return;
    }
    // A successful answer carries SA, Nonce and TSi/TSr (or KE for an IKE rekey): far
    // more than an error notify alone.
    if let Some(len) = ctx
        .sk_len()
        .filter(|&l| l < MIN_SK_WITH_AUTH && !ctx.has_decrypted())
    {
        let what = if ctx.sk_first() == Some(NOTIFY) {
            format!("response holds a Notify alone ({len} bytes of SK data): request refused")
        } else {
            format!(
                "response of {len} bytes of SK data is too short for SA and Nonce: request refused"
            )
        };
        detail(sa, i, what);
        let reason = "the CREATE_CHILD_SA response holds an encrypted error notify alone: \
                      the responder refused the child SA, most often for want of a common \
                      security method (perfect forward secrecy on one side only is the \
                      classic) or of mirrored filters; the session keys tell which"
            .to_string();
        sa.child_refused(Failure::inferred(
            "negotiation-stalled",
            ctx.frame,
            0.6,
            reason,
        ));
        return;
    }
    let ex = &sa.exchanges[i];
    if let (Some(spi_i), Some(spi_r)) = ex.ike_offer() {
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
    let Some(frame) = sa.auth_suspect.take().map(|f| f.frame) else {
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

/// ESP on a child SA proves that an IKE_AUTH response which looked childless did carry
/// the child after all.
pub(crate) fn confirm_child(sa: &mut IkeSa, counters: &mut Counters, fx: &mut Vec<Effect>) {
    let Some(frame) = sa.child_suspect.take().map(|f| f.frame) else {
        return;
    };
    if let Some(i) = sa
        .exchanges
        .iter()
        .position(|e| e.response.is_some_and(|(f, _)| f == frame))
    {
        let ts = sa.exchanges[i].response.map_or(sa.last_seen, |(_, t)| t);
        add_child(sa, i, ts, counters, fx);
        sa.establish(frame, ts);
    }
}

/// An encrypted INFORMATIONAL whose request begins with a Delete payload, read without
/// keys from the first-payload field of each SK payload, which is in the clear: the
/// responder answers a child SA's Delete with the Deletes of the paired SAs and an IKE
/// SA's Delete with an empty INFORMATIONAL (RFC 7296 §1.4.1).
fn encrypted_delete(
    sa: &mut IkeSa,
    i: usize,
    ctx: &MsgCtx<'_>,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    let ex = &sa.exchanges[i];
    if ctx.has_decrypted() || ex.decrypted || ex.sk_first != DELETE {
        return;
    }
    match ctx.sk_first() {
        Some(DELETE) => {
            detail(
                sa,
                i,
                "Delete of a child SA (encrypted; answered with Deletes)".to_string(),
            );
            // One child SA went (its Delete names it inside); counted here once, whichever
            // child the wire shows it to be.
            counters.key_deletions += 1;
            if !sa.delete_superseded(fx) {
                // The rekeyed successor has not shown its SPIs yet; see `linked`.
                sa.rare_mut().pending_child_delete = Some(ctx.frame);
            }
        }
        Some(0) => ike_delete_unseen(sa, i, ctx, counters, fx),
        _ => {}
    }
}

/// An encrypted Delete of the IKE SA. Shortly after a CREATE_CHILD_SA that created no
/// ESP SPI it closes the old SA of an IKE SA rekey, whose successor's SPIs are not in
/// the clear yet: the SA lives on (its children move to the successor when it shows).
fn ike_delete_unseen(
    sa: &mut IkeSa,
    i: usize,
    ctx: &MsgCtx<'_>,
    counters: &mut Counters,
    fx: &mut Vec<Effect>,
) {
    let placeholder = sa.children.last().is_some_and(|c| {
        !c.deleted
            && c.source == super::esp::LinkKind::Inferred
            && c.spi_in.is_none()
            && c.spi_out.is_none()
    });
    let recent = sa.exchanges[..i].iter().rposition(|x| {
        x.kind == CREATE_CHILD_SA
            && x.response
                .is_some_and(|(_, t)| ctx.ts.0 - t.0 <= REKEY_DELETE_WITHIN_NS)
    });
    match recent.filter(|_| placeholder) {
        Some(ccsa) => {
            sa.children.pop();
            sa.open_slots = sa.open_slots.map(|s| s.saturating_sub(1));
            counters.key_additions = counters.key_additions.saturating_sub(1);
            counters.quick_modes = counters.quick_modes.saturating_sub(1);
            counters.rekeys += 1;
            let response = sa.exchanges[ccsa].response;
            sa.rare_mut().rekey_inferred = response;
            let what = "IKE SA rekey (inferred: no new ESP SPI followed, and the old IKE SA \
                        was deleted right after; the new SA's SPIs are not in the clear)";
            detail(sa, ccsa, what.to_string());
            let what = "Delete of the IKE SA that the rekey replaced (encrypted; answered \
                        with an empty INFORMATIONAL)";
            detail(sa, i, what.to_string());
            debug!(spi_i = %spi64(sa.spi_i), frame = ctx.frame, "IKE SA rekey inferred");
        }
        None => {
            let what = "Delete of the IKE SA (encrypted; answered with an empty INFORMATIONAL)";
            detail(sa, i, what.to_string());
            fx.push(Effect::IkeDeleted);
        }
    }
}
