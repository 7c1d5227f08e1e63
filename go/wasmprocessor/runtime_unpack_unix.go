//go:build unix

package wasmprocessor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// unpackRuntime writes binary into a directory this process creates with a
// unique name under the user cache directory (else the temporary one), after
// checking that no other user can replace anything on the way to it, and
// that the new directory is this user's and private. The file is created
// exclusively, then opened read-only and verified from that descriptor,
// which is what is executed: on Linux as /proc/self/fd/N, so the directory
// is removed at once and nothing stays on disk; elsewhere by its path, in a
// directory only this user can write, removed with the program's last user.
func unpackRuntime(binary []byte, want string) (*runtimeProgram, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("unpacking the wasmtel runtime: %w", err)
	}
	if base, err = filepath.EvalSymlinks(base); err != nil {
		return nil, fmt.Errorf("unpacking the wasmtel runtime: %w", err)
	}
	if err := checkAncestors(base); err != nil {
		return nil, fmt.Errorf("unpacking the wasmtel runtime: %w", err)
	}
	dir, err := os.MkdirTemp(base, "wasmtel-runtime-")
	if err != nil {
		return nil, fmt.Errorf("unpacking the wasmtel runtime: %w", err)
	}
	p, err := unpackInto(dir, binary, want)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("unpacking the wasmtel runtime: %w", err)
	}
	if path, ok := procFDPath(p.file); ok {
		p.path, p.byDescriptor = path, true
		_ = os.RemoveAll(dir)
	} else {
		p.dir = dir
	}
	return p, nil
}

func unpackInto(dir string, binary []byte, want string) (*runtimeProgram, error) {
	if err := checkPrivateDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "wasmtel-bridge")
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o700)
	if err != nil {
		return nil, err
	}
	_, werr := out.Write(binary)
	if err := errors.Join(werr, out.Close()); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	// Closed for writing before it is run: exec refuses a file open for writing (ETXTBSY).
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err == nil && (!info.Mode().IsRegular() || info.Mode().Perm() != 0o700 || ownerOf(info) != os.Geteuid()) {
		err = fmt.Errorf("%s is not the file written (mode %v, owner uid %d)", path, info.Mode(), ownerOf(info))
	}
	if err == nil {
		if err = verifyDigest(file, want); err != nil {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	return &runtimeProgram{key: "embedded:" + want, path: path, file: file, digest: want}, nil
}

// checkPrivateDir accepts only a real directory of this user, mode 0700:
// nobody else can add, rename or replace what is in it.
func checkPrivateDir(dir string) error {
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	switch {
	case !info.IsDir():
		return fmt.Errorf("%s is not a directory (%v)", dir, info.Mode().Type())
	case ownerOf(info) != os.Geteuid():
		return fmt.Errorf("%s is owned by uid %d, not by this process (uid %d)", dir, ownerOf(info), os.Geteuid())
	case info.Mode().Perm() != 0o700:
		return fmt.Errorf("%s has mode %04o, not 0700: other users could change what is in it", dir, info.Mode().Perm())
	}
	return nil
}

// checkAncestors accepts a directory (symlinks resolved) whose every
// ancestor, itself included, belongs to root or to this user and is writable
// by no one else, unless it is sticky (as /tmp is): then others can add
// entries but not rename or remove this user's.
func checkAncestors(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	euid := os.Geteuid()
	for {
		info, err := os.Lstat(dir)
		if err != nil {
			return err
		}
		if owner := ownerOf(info); owner != 0 && owner != euid {
			return fmt.Errorf("%s is owned by uid %d, neither root nor this process (uid %d): it could replace what is under it", dir, owner, euid)
		}
		if info.Mode().Perm()&0o022 != 0 && info.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("%s is writable by group or others (mode %04o) and not sticky: they could replace what is under it", dir, info.Mode().Perm())
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

func ownerOf(info os.FileInfo) int {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
