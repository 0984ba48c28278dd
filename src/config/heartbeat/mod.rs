//! The three files in /etc/ha.d that Heartbeat 3.0.6 runs on — ha.cf, haresources, authkeys —
//! as typed models with parsers that follow the real daemon's rules (PROTOCOL.md §6), so the
//! agent reads exactly what the real daemon would and the controller can prove that what it
//! renders parses back to what it meant.

pub mod authkeys;
