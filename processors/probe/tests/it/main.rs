//! The probe as a host process: the whole conformance suite, with every check applicable.

mod conformance;
