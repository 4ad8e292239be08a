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
    /// IEEE 754 half precision (numpy `float16`, HDF5's 2-byte IEEE float).
    Float16,
    Float32,
    Float64,
    /// Two `float32`: real part, then imaginary part (numpy `complex64`).
    Complex64,
    /// Two `float64`: real part, then imaginary part (numpy `complex128`).
    Complex128,
}

impl DataType {
    pub const ALL: [DataType; 14] = [
        DataType::Bool,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float16,
        DataType::Float32,
        DataType::Float64,
        DataType::Complex64,
        DataType::Complex128,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DataType::Bool | DataType::Int8 | DataType::UInt8 => 1,
            DataType::Int16 | DataType::UInt16 | DataType::Float16 => 2,
            DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4,
            DataType::Int64 | DataType::UInt64 | DataType::Float64 | DataType::Complex64 => 8,
            DataType::Complex128 => 16,
        }
    }

    /// Bytes of the scalar an element is made of, the unit of byte swapping: the size of one
    /// part of a complex number, else the element size.
    pub fn component_size(self) -> usize {
        match self {
            DataType::Complex64 | DataType::Complex128 => self.size() / 2,
            _ => self.size(),
        }
    }

    /// Whether elements are complex numbers.
    pub fn is_complex(self) -> bool {
        matches!(self, DataType::Complex64 | DataType::Complex128)
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
            DataType::Float16 => "float16",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
            DataType::Complex64 => "complex64",
            DataType::Complex128 => "complex128",
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
/// `f64`, `half::f16`, `num_complex::Complex32` / `Complex64` for complex64 / complex128): one
/// monomorphic body per type.
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
            DataType::Float16 => {
                type $T = half::f16;
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
            DataType::Complex64 => {
                type $T = num_complex::Complex32;
                $body
            }
            DataType::Complex128 => {
                type $T = num_complex::Complex64;
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
        assert!(DataType::from_name("complex256").is_err());
        assert!(DataType::from_name("bfloat16").is_err());
    }

    #[test]
    fn element_types_match_sizes() {
        for dtype in DataType::ALL {
            assert_eq!(with_element_type!(dtype, T => size_of::<T>()), dtype.size());
        }
        assert_eq!(DataType::Complex64.component_size(), 4);
        assert_eq!(DataType::Complex128.component_size(), 8);
        assert_eq!(DataType::Float16.component_size(), 2);
        assert!(DataType::Complex128.is_complex() && !DataType::Float64.is_complex());
    }
}
