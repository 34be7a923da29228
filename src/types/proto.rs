//! Function prototypes: what `perf probe -V` shows, and the types that let
//! a probe say `file->f_inode` without a cast.

use std::fmt;

use super::{type_name, Param, Result, Type, TypeId, TypeSource};

/// A function's return type and named parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    pub name: String,
    pub ret: TypeId,
    pub params: Vec<Param>,
    pub variadic: bool,
}

impl Signature {
    /// The prototype of function `name`, if the source knows it.
    pub fn of(src: &dyn TypeSource, name: &str) -> Result<Option<Signature>> {
        let Some(id) = src.find_func(name)? else {
            return Ok(None);
        };
        let Type::Func { proto, .. } = src.get(id)? else {
            return Ok(None);
        };
        let Type::FuncProto {
            ret,
            params,
            variadic,
        } = src.get(proto)?
        else {
            return Ok(None);
        };
        Ok(Some(Signature {
            name: name.to_string(),
            ret,
            params,
            variadic,
        }))
    }

    /// Position of the parameter called `name`.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params
            .iter()
            .position(|p| p.name.as_deref() == Some(name))
    }

    /// `ssize_t vfs_read(struct file * file, char __user * buf, ...)`.
    pub fn display<'a>(&'a self, src: &'a dyn TypeSource) -> impl fmt::Display + 'a {
        SignatureDisplay { sig: self, src }
    }
}

struct SignatureDisplay<'a> {
    sig: &'a Signature,
    src: &'a dyn TypeSource,
}

impl fmt::Display for SignatureDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}(",
            type_name(self.src, self.sig.ret),
            self.sig.name
        )?;
        for (i, p) in self.sig.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", type_name(self.src, p.ty))?;
            if let Some(n) = &p.name {
                write!(f, " {n}")?;
            }
        }
        if self.sig.variadic {
            f.write_str(if self.sig.params.is_empty() {
                "..."
            } else {
                ", ..."
            })?;
        }
        f.write_str(")")
    }
}

/// Shell-style glob (`*`, `?`) over a name, for function search.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Functions whose name matches `pattern` (a glob; a plain word matches
/// as a substring), sorted.
pub fn search(src: &dyn TypeSource, pattern: &str) -> Result<Vec<String>> {
    let pat = if pattern.contains(['*', '?']) {
        pattern.to_string()
    } else {
        format!("*{pattern}*")
    };
    Ok(src
        .func_names()?
        .into_iter()
        .filter(|n| glob_match(&pat, n))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("vfs_*", "vfs_read"));
        assert!(glob_match("*read*", "vfs_read_iter"));
        assert!(glob_match("tcp_v?_rcv", "tcp_v4_rcv"));
        assert!(!glob_match("tcp_v?_rcv", "tcp_v44_rcv"));
        assert!(!glob_match("vfs_*", "do_vfs_read"));
        assert!(glob_match("*", ""));
    }
}
