//! Borrowing the UTF-8 of Python `str` arguments without a copy.
//!
//! Under the `abi3-py39` limited API pyo3 reads a `str` by encoding it into a temporary `bytes`
//! object (`PyBackedStr`): one allocation and copy per argument, ~0.4 µs of a cache hit's
//! ~0.7 µs call. `PyUnicode_AsUTF8AndSize`, which returns the UTF-8 that CPython caches inside
//! the `str` (for ASCII strings: the string's own data), is part of the stable ABI from 3.10.
//! On Linux and macOS the extension's symbols resolve from the running interpreter, where it
//! exists in every CPython 3 (outside the limited API before 3.10), so the wheel still loads on
//! 3.9; it is only called when the interpreter is 3.10 or newer, and 3.9 keeps `PyBackedStr`.
//! On Windows an abi3 extension links against `python3.dll`, whose 3.9 build does not export
//! the symbol, so there the borrow is not compiled in at all.
#![allow(unsafe_code)]
// On Windows only the copying path is compiled (see above).
#![cfg_attr(windows, allow(unused_imports, dead_code))]

use std::ops::Deref;
use std::os::raw::c_char;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyString;

#[cfg(not(windows))]
unsafe extern "C" {
    // Stable ABI since CPython 3.10 (and present, unlimited, in every CPython 3 before it).
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut ffi::PyObject,
        size: *mut ffi::Py_ssize_t,
    ) -> *const c_char;
}

/// Whether the running interpreter has `PyUnicode_AsUTF8AndSize` in its stable ABI.
#[cfg(not(windows))]
fn borrowable(py: Python<'_>) -> bool {
    static BORROW: OnceLock<bool> = OnceLock::new();
    *BORROW.get_or_init(|| py.version_info() >= (3, 10))
}

/// The UTF-8 of a `str`: borrowed from the object (3.10+) or from an encoded copy (3.9).
pub(crate) enum Text<'a> {
    Borrowed(&'a str),
    Backed(PyBackedStr),
}

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Backed(s) => s,
        }
    }
}

/// `s` as UTF-8. Fails (`UnicodeEncodeError`) for a `str` holding lone surrogates, which no
/// HTTP header or path can carry.
#[cfg(windows)]
pub(crate) fn text<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Text<'a>> {
    s.extract::<PyBackedStr>().map(Text::Backed)
}

/// `s` as UTF-8. Fails (`UnicodeEncodeError`) for a `str` holding lone surrogates, which no
/// HTTP header or path can carry.
#[cfg(not(windows))]
pub(crate) fn text<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Text<'a>> {
    if !borrowable(s.py()) {
        return s.extract::<PyBackedStr>().map(Text::Backed);
    }
    borrow(s).map(Text::Borrowed)
}

/// The UTF-8 that CPython keeps inside `s`; only when `borrowable`.
#[cfg(not(windows))]
fn borrow<'a>(s: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live `str` (the `Bound` holds a reference and the GIL is held). On
    // success CPython returns a pointer to `size` bytes of valid UTF-8 that the string object
    // owns and keeps unchanged until the object is freed (`str` is immutable), so borrowing it
    // for the lifetime of the borrow of `s` is sound. On failure it returns NULL with an
    // exception set, which `PyErr::fetch` takes.
    unsafe {
        let p = PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut size);
        if p.is_null() {
            return Err(PyErr::fetch(s.py()));
        }
        let len = usize::try_from(size).unwrap_or(0);
        let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len);
        Ok(std::str::from_utf8_unchecked(bytes))
    }
}

/// A header list as UTF-8 pairs, in one allocation where the strings can be borrowed; else the
/// copies are kept in `backing`.
pub(crate) fn pairs<'a>(
    headers: &'a [(Bound<'_, PyString>, Bound<'_, PyString>)],
    backing: &'a mut Vec<(PyBackedStr, PyBackedStr)>,
) -> PyResult<Vec<(&'a str, &'a str)>> {
    #[cfg(not(windows))]
    if let Some((first, _)) = headers.first()
        && borrowable(first.py())
    {
        return headers
            .iter()
            .map(|(n, v)| Ok((borrow(n)?, borrow(v)?)))
            .collect();
    }
    *backing = headers
        .iter()
        .map(|(n, v)| Ok((n.extract()?, v.extract()?)))
        .collect::<PyResult<_>>()?;
    let backing: &'a Vec<_> = backing;
    Ok(backing.iter().map(|(n, v)| (&**n, &**v)).collect())
}

/// `Option<str>` as UTF-8.
pub(crate) fn opt_text<'a>(s: Option<&'a Bound<'_, PyString>>) -> PyResult<Option<Text<'a>>> {
    s.map(text).transpose()
}
