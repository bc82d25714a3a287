// SPDX-License-Identifier: GPL-2.0
//! A misc character device whose open files are objects of the module (`struct miscdevice`),
//! which 6.12's kernel crate cannot make.
//!
//! The file operations are C (they need `THIS_MODULE`, so that an open file holds the module)
//! and call the functions `keyagent_channel_*`, which [`declare_device_files!`] defines for a
//! type implementing [`DeviceFile`]. Each open file owns an `Arc` of that type in its
//! `private_data`; other holders (an agent key) may keep the object after the file is closed.

use super::bindings;
use core::marker::PhantomData;
use kernel::{
    error::{from_err_ptr, Result},
    sync::{Arc, ArcBorrow},
    uaccess::{UserSlice, UserSliceReader, UserSliceWriter},
};

/// The object behind each open file of the device.
pub(crate) trait DeviceFile: Sized + Send + Sync + 'static {
    /// A new object for a file being opened. May sleep.
    fn open() -> Result<Arc<Self>>;
    /// The file's last reference was closed. May sleep.
    fn release(this: Arc<Self>);
    /// `read()`: fills `out`, returning the bytes written. May sleep.
    fn read(this: ArcBorrow<'_, Self>, out: UserSliceWriter, nonblock: bool) -> Result<usize>;
    /// `write()`: consumes `input`, returning the bytes taken. May sleep.
    fn write(this: ArcBorrow<'_, Self>, input: UserSliceReader) -> Result<usize>;
    /// `poll()`: registers with `table` and returns the ready mask ([`POLL_READABLE`],
    /// [`POLL_WRITABLE`]).
    fn poll(this: ArcBorrow<'_, Self>, table: &PollTable<'_>) -> u32;
}

/// The events `poll()` reports for a file with data to read, and for a writable one.
pub(crate) fn poll_readable() -> u32 {
    // SAFETY: Returns a constant.
    unsafe { bindings::keyagent_poll_readable() }
}

pub(crate) fn poll_writable() -> u32 {
    // SAFETY: Returns a constant.
    unsafe { bindings::keyagent_poll_writable() }
}

/// The poll table of one `poll()` call on a file.
pub(crate) struct PollTable<'a> {
    pub(super) file: *mut bindings::file,
    pub(super) table: *mut bindings::poll_table_struct,
    _call: PhantomData<&'a ()>,
}

/// The registered device: `/dev/keyagent`, removed when dropped.
pub(crate) struct Device<T: DeviceFile>(PhantomData<T>);

impl<T: DeviceFile> Device<T> {
    /// Registers the device. Files may be opened as soon as this returns. May sleep.
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: Registers the helpers' static miscdevice; deregistered in `drop`.
        kernel::error::to_result(unsafe { bindings::keyagent_channel_device_register() })?;
        Ok(Self(PhantomData))
    }

    /// The object of the current task's descriptor `fd`, which must be a file of the device:
    /// `EBADF` if it is not open, `EINVAL` if it is another file. May sleep.
    pub(crate) fn object_of_fd(fd: i32) -> Result<Arc<T>> {
        // SAFETY: `fget()` takes a reference on the file, or fails.
        let file = from_err_ptr(unsafe { bindings::keyagent_fget_channel(fd) })?;
        // SAFETY: The file is one of the device's (checked by the helper), open and referenced,
        // so its `private_data` is the `Arc` that `open` stored and `release` has not taken.
        let object = unsafe { ArcBorrow::<T>::from_raw(private(file)) }.into();
        // SAFETY: Gives back the reference `fget()` took.
        unsafe { bindings::keyagent_fput(file) };
        Ok(object)
    }
}

impl<T: DeviceFile> Drop for Device<T> {
    fn drop(&mut self) {
        // SAFETY: The device was registered by `register`, once.
        unsafe { bindings::keyagent_channel_device_deregister() }
    }
}

/// # Safety
///
/// `file` must be a valid file.
unsafe fn private<T>(file: *mut bindings::file) -> *const T {
    // SAFETY: By the caller's promise the file is valid.
    unsafe { bindings::keyagent_file_private(file) }.cast()
}

/// Defines the device's file operations (the `keyagent_channel_*` functions the C file
/// operations call) for the [`DeviceFile`] type `$type`. Only one type per module.
macro_rules! declare_device_files {
    ($type:ty) => {
        #[no_mangle]
        extern "C" fn keyagent_channel_open(file: *mut $crate::sys::chardev::RawFile) -> i32 {
            // SAFETY: Called by the device's `open` with the file being opened.
            unsafe { $crate::sys::chardev::open::<$type>(file) }
        }
        #[no_mangle]
        extern "C" fn keyagent_channel_release(file: *mut $crate::sys::chardev::RawFile) {
            // SAFETY: Called by the device's `release` with a file `open` succeeded for.
            unsafe { $crate::sys::chardev::release::<$type>(file) }
        }
        #[no_mangle]
        extern "C" fn keyagent_channel_read(
            file: *mut $crate::sys::chardev::RawFile,
            buf: *mut u8,
            count: usize,
        ) -> isize {
            // SAFETY: Called by the device's `read` with an open file and the user buffer.
            unsafe { $crate::sys::chardev::read::<$type>(file, buf, count) }
        }
        #[no_mangle]
        extern "C" fn keyagent_channel_write(
            file: *mut $crate::sys::chardev::RawFile,
            buf: *const u8,
            count: usize,
        ) -> isize {
            // SAFETY: Called by the device's `write` with an open file and the user buffer.
            unsafe { $crate::sys::chardev::write::<$type>(file, buf, count) }
        }
        #[no_mangle]
        extern "C" fn keyagent_channel_poll(
            file: *mut $crate::sys::chardev::RawFile,
            table: *mut $crate::sys::chardev::RawPollTable,
        ) -> u32 {
            // SAFETY: Called by the device's `poll` with an open file and its poll table.
            unsafe { $crate::sys::chardev::poll::<$type>(file, table) }
        }
    };
}
pub(crate) use declare_device_files;

pub(crate) type RawFile = bindings::file;
pub(crate) type RawPollTable = bindings::poll_table_struct;

/// # Safety
///
/// `file` must be a file of the device being opened.
pub(crate) unsafe fn open<T: DeviceFile>(file: *mut RawFile) -> i32 {
    match T::open() {
        Ok(object) => {
            // SAFETY: The file is being opened; `release` takes the `Arc` back.
            unsafe { bindings::keyagent_file_set_private(file, Arc::into_raw(object) as _) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `file` must be a file of the device whose `open` succeeded, released once.
pub(crate) unsafe fn release<T: DeviceFile>(file: *mut RawFile) {
    // SAFETY: `open` stored an `Arc` in `private_data`; this is its only release.
    let object = unsafe { Arc::<T>::from_raw(private(file)) };
    T::release(object)
}

/// # Safety
///
/// `file` must be an open file of the device, during a call of one of its operations.
unsafe fn borrow<'a, T: DeviceFile>(file: *mut RawFile) -> ArcBorrow<'a, T> {
    // SAFETY: The `Arc` stored by `open` lives until `release`, which cannot run during another
    // operation on the file (the caller holds a reference to it).
    unsafe { ArcBorrow::from_raw(private(file)) }
}

/// # Safety
///
/// As for [`borrow`]; `buf` is the user buffer of the `read()`.
pub(crate) unsafe fn read<T: DeviceFile>(file: *mut RawFile, buf: *mut u8, count: usize) -> isize {
    // SAFETY: As the caller promises.
    let (object, nonblock) = unsafe { (borrow::<T>(file), bindings::keyagent_file_nonblock(file)) };
    let out = UserSlice::new(buf as usize, count).writer();
    match T::read(object, out, nonblock) {
        // CAST: At most `count` bytes, which the VFS bounds by MAX_RW_COUNT.
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// As for [`borrow`]; `buf` is the user buffer of the `write()`.
pub(crate) unsafe fn write<T: DeviceFile>(
    file: *mut RawFile,
    buf: *const u8,
    count: usize,
) -> isize {
    // SAFETY: As the caller promises.
    let object = unsafe { borrow::<T>(file) };
    let input = UserSlice::new(buf as usize, count).reader();
    match T::write(object, input) {
        // CAST: At most `count` bytes, which the VFS bounds by MAX_RW_COUNT.
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// As for [`borrow`]; `table` is the poll table of the `poll()`.
pub(crate) unsafe fn poll<T: DeviceFile>(file: *mut RawFile, table: *mut RawPollTable) -> u32 {
    // SAFETY: As the caller promises.
    let object = unsafe { borrow::<T>(file) };
    let table = PollTable {
        file,
        table,
        _call: PhantomData,
    };
    T::poll(object, &table)
}
