//! The one place that turns a Rust closure into a C status code.
//!
//! [`wrap`] runs a closure under `catch_unwind`: `Ok` becomes [`STATUS_OK`], an `Err`
//! becomes its [`ErrorCode`] and a panic becomes [`ErrorCode::Panic`]; in both failure cases
//! the message is stored in a thread-local that the host reads back through
//! [`PluginDescriptor::last_error`](crate::abi::PluginDescriptor::last_error) on the same
//! thread. A panicking plugin therefore fails one request and never unwinds into the host.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::abi::{RawStr, STATUS_OK};
use crate::types::{ErrorCode, PluginError};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f`, converting its result or panic into a status code and a thread-local message.
pub fn wrap<F>(f: F) -> i32
where
    F: FnOnce() -> Result<(), PluginError>,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => STATUS_OK,
        Ok(Err(e)) => {
            set_last_error(e.message);
            e.code.as_raw()
        }
        Err(payload) => {
            set_last_error(format!("plugin panicked: {}", panic_message(payload.as_ref())));
            ErrorCode::Panic.as_raw()
        }
    }
}

/// Runs a function that cannot report failure (`destroy`, `release_output`), containing
/// a panic and recording its message.
pub fn wrap_void<F: FnOnce()>(f: F) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        set_last_error(format!("plugin panicked: {}", panic_message(payload.as_ref())));
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Stores `message` as this thread's last error.
pub fn set_last_error(message: impl Into<String>) {
    let message = message.into();
    // `try_with` fails only during thread teardown, when nobody can read the message anyway.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = message;
        }
    });
}

/// The `last_error` entry of every Rust plugin's descriptor: this thread's last message,
/// valid until the next call into the plugin on this thread.
pub extern "C" fn last_error() -> RawStr {
    LAST_ERROR
        .try_with(|slot| match slot.try_borrow() {
            Ok(s) => RawStr::borrowed(&s),
            Err(_) => RawStr::EMPTY,
        })
        .unwrap_or(RawStr::EMPTY)
}
