// SPDX-License-Identifier: GPL-2.0
//! Error codes 6.12's `kernel::error::code` lacks.

use super::bindings;
use kernel::error::Error;

macro_rules! errno {
    ($($name:ident),* $(,)?) => {$(
        #[doc = concat!("`-", stringify!($name), "`.")]
        #[expect(non_snake_case)]
        pub(crate) fn $name() -> Error {
            // CAST: errno values are small positive integers.
            Error::from_errno(-(bindings::$name as i32))
        }
    )*};
}

errno!(ENOKEY, EOWNERDEAD, ETIMEDOUT, ECANCELED, EDEADLK, EOPNOTSUPP, EMSGSIZE);
