//! e7-core: the firewall engine. (being written)
#![no_std]
