//! Dropping root after the capture is open: the order a capture tool needs (open the
//! privileged socket first, then give up the right to open another).

use std::ffi::{CStr, CString};

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// The user name contains a NUL byte or is empty.
    #[error("user name {0:?} is not valid")]
    BadName(String),
    /// No such user in the password database.
    #[error("no user named {0:?}; create it or name another with --user")]
    NoSuchUser(String),
    /// A system call failed.
    #[error("{call} for user {user:?} failed: {source}")]
    Call {
        /// The call (`getpwnam_r`, `setgroups`, `setgid`, `setuid`).
        call: &'static str,
        /// The target user.
        user: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// After the switch the process could still become root again.
    #[error("after switching to {0:?} the process could regain root; refusing to continue")]
    Regained(String),
}

/// The identity to switch to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ids {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

/// Switches the whole process to `user`: supplementary groups replaced by the user's
/// primary group, then the group id, then the user id (in that order, since changing the
/// user first would remove the right to change the groups). Afterwards it checks that
/// neither the real nor the effective id is root and that `setuid(0)` fails, so that a
/// compromised decoder cannot reopen sockets or files as root.
///
/// Call it after every capture is open and before starting threads that read untrusted
/// input; glibc applies the change to all threads of the process. Switching to a root
/// user (uid 0) is refused as a [`PrivilegeError::Regained`], since nothing would be dropped.
pub fn drop_privileges(user: &str) -> Result<(), PrivilegeError> {
    let ids = lookup(user)?;
    let call = |call: &'static str| PrivilegeError::Call {
        call,
        user: user.to_string(),
        source: std::io::Error::last_os_error(),
    };
    // SAFETY: plain system calls with a valid pointer to one gid.
    unsafe {
        if libc::setgroups(1, &ids.gid) != 0 {
            return Err(call("setgroups"));
        }
        if libc::setgid(ids.gid) != 0 {
            return Err(call("setgid"));
        }
        if libc::setuid(ids.uid) != 0 {
            return Err(call("setuid"));
        }
    }
    verify_dropped(user, ids)
}

/// Checks that the switch took and cannot be undone.
fn verify_dropped(user: &str, ids: Ids) -> Result<(), PrivilegeError> {
    // SAFETY: the get*id calls cannot fail; setuid(0) is expected to fail with EPERM.
    let (ruid, euid, rgid, egid, regained) = unsafe {
        let regained = libc::setuid(0) == 0;
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
            regained,
        )
    };
    if regained
        || ruid == 0
        || euid == 0
        || ruid != ids.uid
        || euid != ids.uid
        || rgid != ids.gid
        || egid != ids.gid
    {
        return Err(PrivilegeError::Regained(user.to_string()));
    }
    tracing::info!(user, uid = ids.uid, gid = ids.gid, "dropped privileges");
    Ok(())
}

/// Looks a user up with the reentrant `getpwnam_r`, growing its buffer as asked.
fn lookup(user: &str) -> Result<Ids, PrivilegeError> {
    let name = CString::new(user)
        .ok()
        .filter(|c| !c.as_bytes().is_empty())
        .ok_or_else(|| PrivilegeError::BadName(user.to_string()))?;
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        match getpwnam_once(&name, &mut buf) {
            Ok(found) => return found.ok_or_else(|| PrivilegeError::NoSuchUser(user.to_string())),
            Err(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(code) => {
                return Err(PrivilegeError::Call {
                    call: "getpwnam_r",
                    user: user.to_string(),
                    source: std::io::Error::from_raw_os_error(code),
                })
            }
        }
    }
}

/// One `getpwnam_r` attempt: `Ok(None)` when there is no such user, `Err(errno)` on failure.
fn getpwnam_once(name: &CStr, buf: &mut [libc::c_char]) -> Result<Option<Ids>, i32> {
    // SAFETY: all pointers are valid for the call; `pwd` is only read when `result` is
    // non-null, which getpwnam_r guarantees means it was filled.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 {
            return Err(rc);
        }
        if result.is_null() {
            return Ok(None);
        }
        Ok(Some(Ids {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_root_and_rejects_unknown_users() {
        assert_eq!(lookup("root").unwrap(), Ids { uid: 0, gid: 0 });
        assert!(matches!(
            lookup("no-such-user-ipsecmon"),
            Err(PrivilegeError::NoSuchUser(_))
        ));
        assert!(matches!(lookup(""), Err(PrivilegeError::BadName(_))));
        assert!(matches!(lookup("a\0b"), Err(PrivilegeError::BadName(_))));
    }

    #[test]
    fn dropping_to_root_is_refused_by_the_check() {
        // Switching to uid 0 changes nothing; the verification must not call that a drop.
        assert!(verify_dropped("root", Ids { uid: 0, gid: 0 }).is_err());
    }
}
