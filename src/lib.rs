//! Daily tar backups at scheduled times, without cron.
//!
//! `backup_manager` edits the schedules and starts, stops and questions `backup_service`,
//! which wakes about every 45 seconds and writes `backups/NAME.tar` when a schedule's
//! `HH:MM` comes round. Everything lives in one directory, the [home](home::Home).

pub mod archive;
pub mod atomic_file;
pub mod browse;
pub mod descriptors;
pub mod edit_lock;
pub mod encryption;
pub mod excludes;
pub mod generations;
pub mod home;
pub mod hooks;
pub mod incremental;
pub mod index;
pub mod interrupt;
pub mod job;
pub mod logging;
pub mod manager;
pub mod manual;
pub mod metrics;
pub mod mount;
pub mod naming;
pub mod nofollow;
pub mod pause;
pub mod pidfile;
pub mod process;
pub mod retention;
pub mod running;
pub mod schedule;
pub mod schedule_file;
pub mod service;
pub mod state;
pub mod status;
pub mod tar;
pub mod timing;
pub mod trust;
pub mod unit;
pub mod write_back;
pub mod xattrs;
