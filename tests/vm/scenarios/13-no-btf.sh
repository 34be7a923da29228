# A kernel without BTF, live: /sys/kernel/btf is hidden under an empty
# tmpfs, as on a kernel built without it. With no debuginfo either, every
# typed probe gets one error naming both places looked at and the package
# to install. Where the VM has this build's debuginfo vmlinux (run.sh -g:
# the -dbg package's vmlinux without its .BTF section, as a kernel built
# without BTF has it, on a disk mounted at /debuginfo), at each of the
# documented places in turn: a debuginfo file of another build is refused;
# the -S script is the one BTF gives; the DWARF index is cached on the
# first run and reused by the next; and the struct and typed-argument
# scenarios (02, 12) run again, live, typed from DWARF.
R=$(uname -r)
S='(struct task_struct)'
PROBES_FILE=/tmp/nobtf.probes
cat >$PROBES_FILE <<EOF
p wake_up_new_task comm=%0~$S->comm users=%0S~$S->mm->mm_users pid=%0S~$S->pid ppid=%0S~$S->real_parent->pid weight=%0U~$S->se.load.weight
p do_filp_open name=%1~(struct filename)->name
p do_sys_openat2 fl=%2~(struct open_how)->flags
p vfs_read ino=file->f_inode->i_ino n=count name=file->f_path.dentry->d_name.name pos=pos
r vfs_read r=\$retval
r do_mkdirat r=\$retval f:r<0
p __x64_sys_openat name=filename fl=flags d=dfd
p ip_rcv proto=%0U~\$(struct iphdr)l3->protocol ip_src=%0~\$(struct iphdr)l3->saddr itype=%0U~\$(struct icmphdr)l3->type
p tcp_v4_rcv syn=%0~\$(struct tcphdr)l4->syn dev=%0~(struct sk_buff)->dev->name
EOF

# show NAME: `coolkprobe -S` of those probes (group name made neutral),
# its exit code and stderr, and how long it took (guest seconds).
show() {
    _t0=$(cut -d' ' -f1 /proc/uptime)
    coolkprobe -S -f $PROBES_FILE >/tmp/$1.show 2>/tmp/$1.err
    kv $1.rc $?
    kv $1.seconds "$(awk -v a=$_t0 -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }')"
    sed -i 's/coolkprobe_[0-9]*/coolkprobe_N/g' /tmp/$1.show
    dump $1.show /tmp/$1.show
    dump $1.err /tmp/$1.err
}

show btf
mount -t tmpfs nobtf /sys/kernel/btf || fail "cannot hide /sys/kernel/btf"
kv btf_hidden "$([ -e /sys/kernel/btf/vmlinux ] && echo 0 || echo 1)"
show none

if [ -n "${DEBUGINFO_DEV:-}" ]; then
    V=/debuginfo/$DEBUGINFO_FILE
    [ -f $V ] || fail "no $V: see the console log (virtio modules, mount of $DEBUGINFO_DEV)"
    mkdir -p /usr/lib/debug/boot /usr/lib/debug/lib/modules/$R /boot
    CACHE=$HOME/.cache/coolkprobe
    rm -rf $CACHE
    # cache_state NAME: the index files, with inode and mtime (a rebuilt
    # index is written aside and renamed: a new inode).
    cache_state() { kv $1 "$(cd $CACHE 2>/dev/null && for f in dwarf-*.idx; do [ -e "$f" ] && echo "$f $(stat -c '%i %Y %s' $f)"; done | tr '\n' ';')"; }

    # Another build's ELF at the first place: refused (coolkprobe itself
    # has a build-id, and it is not the kernel's).
    ln -s /bin/coolkprobe /usr/lib/debug/boot/vmlinux-$R
    show other
    rm /usr/lib/debug/boot/vmlinux-$R

    # Each place in turn; the first run builds the index, the others use it.
    i=0
    for place in /usr/lib/debug/boot/vmlinux-$R /usr/lib/debug/lib/modules/$R/vmlinux /boot/vmlinux-$R; do
        ln -s $V $place
        show dwarf$i
        cache_state cache$i
        [ $i = 0 ] && show dwarf_again && cache_state cache_again
        rm $place
        i=$((i + 1))
    done

    # The struct and typed-argument scenarios, live, from DWARF.
    ln -s $V /usr/lib/debug/boot/vmlinux-$R
    . /scenarios/02-struct.sh
    . /scenarios/12-typed-args.sh
    cache_state cache_end
    rm /usr/lib/debug/boot/vmlinux-$R
fi
umount /sys/kernel/btf
