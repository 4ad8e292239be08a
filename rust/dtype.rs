//! Element types of native arrays and their numpy names.

use crate::error::{Error, Result};

/// The element types native arrays support, stored in native byte order in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
}

impl DataType {
    pub const ALL: [DataType; 11] = [
        DataType::Bool,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Float64,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DataType::Bool | DataType::Int8 | DataType::UInt8 => 1,
            DataType::Int16 | DataType::UInt16 => 2,
            DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4,
            DataType::Int64 | DataType::UInt64 | DataType::Float64 => 8,
        }
    }

    /// The numpy dtype name (`numpy.dtype(name)`), also zarr v3's data type name.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Int32 => "int32",
            DataType::Int64 => "int64",
            DataType::UInt8 => "uint8",
            DataType::UInt16 => "uint16",
            DataType::UInt32 => "uint32",
            DataType::UInt64 => "uint64",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
        }
    }

    /// The type with numpy / zarr v3 name `name`.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|dtype| dtype.name() == name)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unsupported data type {name:?}; supported: {}",
                    Self::ALL.map(DataType::name).join(", ")
                ))
            })
    }
}

/// Runs `$body` with `$T` bound to the Rust element type of a `DataType` (`bool`, `i8`, ...,
/// `f64`): one monomorphic body per type.
macro_rules! with_element_type {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DataType::Bool => {
                type $T = bool;
                $body
            }
            DataType::Int8 => {
                type $T = i8;
                $body
            }
            DataType::Int16 => {
                type $T = i16;
                $body
            }
            DataType::Int32 => {
                type $T = i32;
                $body
            }
            DataType::Int64 => {
                type $T = i64;
                $body
            }
            DataType::UInt8 => {
                type $T = u8;
                $body
            }
            DataType::UInt16 => {
                type $T = u16;
                $body
            }
            DataType::UInt32 => {
                type $T = u32;
                $body
            }
            DataType::UInt64 => {
                type $T = u64;
                $body
            }
            DataType::Float32 => {
                type $T = f32;
                $body
            }
            DataType::Float64 => {
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use with_element_type;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for dtype in DataType::ALL {
            assert_eq!(DataType::from_name(dtype.name()).unwrap(), dtype);
        }
        assert!(DataType::from_name("complex64").is_err());
    }
}
