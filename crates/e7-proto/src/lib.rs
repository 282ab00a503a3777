//! e7-proto: the eftirlit generic-netlink schema. (being written)
#![no_std]
