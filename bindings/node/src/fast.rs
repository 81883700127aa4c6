//! `Edge.bearerRequest()`: `Edge.handleRequest` for a request with at most one `Authorization`
//! header (no `DPoP`, no client certificate) as a plain N-API function.
//!
//! Why it exists: on this binding's hit path the napi-rs class method call itself cost ~0.28 µs
//! before doing anything (per-call borrow tracking of `this` in a process-wide map, class type
//! checks), and each string argument was copied into a fresh `String`: together more than the
//! core's whole decision (~0.21 µs). A function registered with `napi_create_function` costs
//! ~0.01 µs to call. (Measured again with the Step API, whose `handleRequest` method takes only the
//! `Authorization` / `DPoP` values: the napi-rs method is still ~2.5× this function per hit;
//! BENCHMARKS.md.) Its callback data is one strong `Rc` of the edge's [`State`] (so the state
//! lives as long as either the `Edge` or the function; the last one releases the cached JS
//! objects, see `release_state`), its string arguments are copied once into a reused buffer, and it then
//! runs what `Edge.handleRequest` runs (`core::Edge::handle_request`, then [`State::request_step`]): the step is the core's, unchanged.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::c_void;
use std::ops::Range;
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, Unknown};
use napi::{Env, JsError, sys};
use phantom_edge_core as core;

use crate::{Result, State, exclusive, invalid_arg, now_or, release_state, to_u64};

/// Arguments: id, method, scheme, authority, path, authorization, now.
const ARGS: usize = 7;
/// Scratch buffer capacity (bytes) kept between calls.
const SCRATCH_KEEP: usize = 64 * 1024;
/// UTF-16 units read in one N-API call (longer strings take two more).
const SCRATCH_UNITS: usize = 1024;

/// Makes the function for `state` (see the module docs).
pub(crate) fn make<'e>(env: &'e Env, state: &Rc<RefCell<State>>) -> Result<Unknown<'e>> {
    let data = Rc::into_raw(Rc::clone(state)).cast_mut().cast::<c_void>();
    let name = c"bearerRequest";
    let mut f = ptr::null_mut();
    // SAFETY: `env` is the live env of this call. `data` is a strong count of the state,
    // handed to the function as its callback data; on success the finalizer added below takes
    // it back exactly once (when the function is collected), on failure it is taken back here.
    unsafe {
        let made = sys::napi_create_function(
            env.raw(),
            name.as_ptr(),
            name.count_bytes() as isize,
            Some(bearer_request),
            data,
            &mut f,
        );
        if made != sys::Status::napi_ok {
            drop(Rc::from_raw(data.cast::<RefCell<State>>()));
            return Err(invalid_arg("this", "napi_create_function failed"));
        }
        let fin = sys::napi_add_finalizer(
            env.raw(),
            f,
            data,
            Some(finalize),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        if fin != sys::Status::napi_ok {
            // The function is never handed to JS, so nothing can call it: take the count back.
            drop(Rc::from_raw(data.cast::<RefCell<State>>()));
            return Err(invalid_arg("this", "napi_add_finalizer failed"));
        }
        Unknown::from_napi_value(env.raw(), f).map_err(|e| invalid_arg("this", &e.reason))
    }
}

unsafe extern "C" fn finalize(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the strong count `make` gave this function; finalizers run once.
    let state = unsafe { Rc::from_raw(data.cast::<RefCell<State>>()) };
    release_state(state, &Env::from_raw(env));
}

unsafe extern "C" fn bearer_request(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: called by Node-API with a live env and callback info, on the JS thread.
    match unsafe { bearer_request_call(env, info) } {
        Ok(v) => v,
        Err(e) => {
            // SAFETY: as above; the function then returns NULL with the exception pending.
            unsafe { JsError::from(e).throw_into(env) };
            ptr::null_mut()
        }
    }
}

unsafe fn bearer_request_call(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Result<sys::napi_value> {
    let mut argc = ARGS;
    let mut argv = [ptr::null_mut(); ARGS];
    let mut data = ptr::null_mut();
    // SAFETY: `argv` has room for `argc` values; missing arguments are filled with
    // `undefined`.
    let ok = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    if ok != sys::Status::napi_ok || data.is_null() {
        return Err(invalid_arg("this", "napi_get_cb_info failed"));
    }
    // SAFETY: `data` is the strong count `make` stored, alive until this function's
    // finalizer, which cannot run while the function is executing.
    let mut state = exclusive(unsafe { &*data.cast::<RefCell<State>>() })?;

    // SAFETY (every read below): live env, values from `napi_get_cb_info`.
    let id = to_u64("id", unsafe { number(env, argv[0], "id") }?)?;
    let now = unsafe { opt_number(env, argv[6], "now") }?;
    // The strings go one after another into the state's scratch buffer (no allocation once it
    // has grown to fit a request), then are borrowed from it.
    let (mut units, mut text) = std::mem::take(&mut state.scratch);
    text.clear();
    let u = &mut units;
    let string = |v, name: &str, u: &mut Vec<u16>, t: &mut Vec<u8>| {
        unsafe { utf8(env, v, name, u, t) }?.ok_or_else(|| invalid_arg(name, "must be a string"))
    };
    let method = string(argv[1], "method", u, &mut text)?;
    let scheme = string(argv[2], "scheme", u, &mut text)?;
    let authority = string(argv[3], "authority", u, &mut text)?;
    let path = string(argv[4], "path", u, &mut text)?;
    let authorization = unsafe { utf8(env, argv[5], "authorization", u, &mut text) }?;
    // SAFETY: `utf8` appends only whole UTF-8 encodings (ASCII bytes or a `String`'s bytes)
    // and the ranges are the boundaries it returned, so every slice is valid UTF-8.
    let s = |r: Range<usize>| unsafe { std::str::from_utf8_unchecked(&text[r]) };
    let authorization = authorization.map(s);
    let header;
    let headers: &[(&str, &str)] = match authorization {
        Some(v) => {
            header = [("authorization", v)];
            &header
        }
        None => &[],
    };
    let req = core::Request {
        id,
        method: s(method),
        scheme: s(scheme),
        authority: s(authority),
        path: s(path),
        headers,
        client_cert_thumbprint: None,
    };
    let env = Env::from_raw(env);
    state.inner.handle_request(now_or(now)?, &req);
    let step = state.request_step(&env, id)?;
    // Kept for the next call, unless one huge request grew them.
    units.shrink_to(SCRATCH_KEEP / 2);
    text.shrink_to(SCRATCH_KEEP);
    state.scratch = (units, text);
    drop(state);
    // SAFETY: live env; the value is converted on the JS thread.
    unsafe { ToNapiValue::to_napi_value(env.raw(), step) }
        .map_err(|e| invalid_arg("this", &e.reason))
}

/// Whether `v` is `null` or `undefined`.
unsafe fn is_nullish(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut t = 0;
    // SAFETY: forwarded from the caller.
    let ok = unsafe { sys::napi_typeof(env, v, &mut t) };
    ok == sys::Status::napi_ok
        && (t == sys::ValueType::napi_null || t == sys::ValueType::napi_undefined)
}

/// A number argument.
unsafe fn number(env: sys::napi_env, v: sys::napi_value, name: &str) -> Result<f64> {
    // SAFETY: forwarded from the caller.
    unsafe { opt_number(env, v, name) }?.ok_or_else(|| invalid_arg(name, "must be a number"))
}

/// A number argument, or `None` for `null` / `undefined`.
unsafe fn opt_number(env: sys::napi_env, v: sys::napi_value, name: &str) -> Result<Option<f64>> {
    let mut n = 0.0;
    // SAFETY: forwarded from the caller.
    match unsafe { sys::napi_get_value_double(env, v, &mut n) } {
        sys::Status::napi_ok => Ok(Some(n)),
        // SAFETY: forwarded from the caller.
        _ if unsafe { is_nullish(env, v) } => Ok(None),
        _ => Err(invalid_arg(name, "must be a number")),
    }
}

/// Appends a string argument's exact UTF-8 to `text` and returns where it is; `None` for `null`
/// or `undefined`.
///
/// Read as UTF-16 (a plain copy of V8's string; asking V8 for UTF-8 made it walk each string
/// twice, measured as a third of this function's time) into `units`, then encoded here: ASCII
/// byte for byte, anything else with the same replacement of lone surrogates as V8's own UTF-8
/// writer (U+FFFD). One N-API call when the string fits the buffer: `napi_get_value_string_utf16`
/// copies min(length, capacity − 1) units, so fewer than capacity − 1 means the whole string;
/// otherwise the length is asked and the copy must match it. A string is never cut short.
unsafe fn utf8(
    env: sys::napi_env,
    v: sys::napi_value,
    name: &str,
    units: &mut Vec<u16>,
    text: &mut Vec<u8>,
) -> Result<Option<Range<usize>>> {
    units.clear();
    units.reserve(SCRATCH_UNITS);
    let mut copied = 0;
    // SAFETY: forwarded from the caller; the buffer has room for `capacity` units (the string
    // and its terminating NUL), and only the `copied` units written are counted as initialised.
    let ok = unsafe {
        sys::napi_get_value_string_utf16(env, v, units.as_mut_ptr(), units.capacity(), &mut copied)
    };
    if ok != sys::Status::napi_ok {
        // SAFETY: forwarded from the caller.
        return if unsafe { is_nullish(env, v) } {
            Ok(None)
        } else {
            Err(invalid_arg(name, "must be a string"))
        };
    }
    if copied + 1 >= units.capacity() {
        // Perhaps cut at the buffer's end: ask the length, make room, copy again.
        let mut len = 0;
        // SAFETY: as above; a NULL buffer asks only for the length.
        let ok = unsafe { sys::napi_get_value_string_utf16(env, v, ptr::null_mut(), 0, &mut len) };
        if ok != sys::Status::napi_ok {
            return Err(invalid_arg(name, "could not be read"));
        }
        units.reserve(len + 1);
        // SAFETY: as above, with room for `len` units and the NUL.
        let ok = unsafe {
            sys::napi_get_value_string_utf16(env, v, units.as_mut_ptr(), len + 1, &mut copied)
        };
        if ok != sys::Status::napi_ok || copied != len {
            return Err(invalid_arg(name, "could not be read"));
        }
    }
    // SAFETY: N-API wrote `copied` units (checked complete above).
    unsafe { units.set_len(copied) };
    let start = text.len();
    if units.iter().fold(0, |acc, &u| acc | u) < 0x80 {
        text.extend(units.iter().map(|&u| u as u8)); // ASCII: < 0x80, checked above
    } else {
        text.extend_from_slice(String::from_utf16_lossy(units).as_bytes());
    }
    Ok(Some(start..text.len()))
}
