# seadragon-store's users and JWT secrets (issue 16): user add, passwd,
# disable, enable, remove and list, secret rotate, and what each leaves in
# the store, read back with lmdb-utils (mdb_dump); the stored hashes
# checked with libargon2 itself (through Python's ctypes), and every
# refusal shown to leave the store byte for byte as it was.
use strict;
use warnings;
use FindBin;
use Test::More;
use File::Temp ();
use POSIX ();
use IO::Pty;
use MIME::Base64 qw(decode_base64);

my $tool = "$FindBin::Bin/../build/seadragon-store";

plan skip_all => "build/seadragon-store is not built: run make" unless -x $tool;

for my $util (qw(mdb_dump mdb_load python3)) {
    plan skip_all => "$util is missing"
        unless grep { -x "$_/$util" } split /:/, $ENV{PATH};
}

my $dir = File::Temp->newdir();
my $serial = 0;

my $ISO = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/;
my $HASH = qr/\A\$argon2id\$v=19\$m=65536,t=3,p=1\$[A-Za-z0-9+\/]{22}\$[A-Za-z0-9+\/]{43}\z/;


# Runs a command with stdin from the text given (or /dev/null):
# { status, out, err }.
sub run_cmd {
    my $opts = ref $_[0] eq 'HASH' ? shift : {};
    my @cmd = @_;
    my $out = File::Temp->new();
    my $err = File::Temp->new();
    my $in = File::Temp->new();
    print $in $opts->{stdin} if defined $opts->{stdin};
    close $in;

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', defined $opts->{stdin} ? "$in" : '/dev/null'
            or POSIX::_exit(126);
        open STDOUT, '>&', $out or POSIX::_exit(126);
        open STDERR, '>&', $err or POSIX::_exit(126);
        exec @cmd or POSIX::_exit(127);
    }

    waitpid $pid, 0;
    my $status = $? & 127 ? 128 + ($? & 127) : $? >> 8;

    local $/;
    seek $out, 0, 0;
    seek $err, 0, 0;
    return { status => $status, out => scalar <$out> // '',
             err => scalar <$err> // '' };
}

sub sd {
    my $opts = ref $_[0] eq 'HASH' ? shift : {};
    my $store = shift;
    return run_cmd($opts, $tool, '--store', $store, @_);
}

# the tool with a password on standard input
sub sdp {
    my ($store, $password, @args) = @_;
    return sd({ stdin => $password }, $store, @args);
}

sub result_is {
    my ($r, $status, $out, $err, $name) = @_;
    my $ok = 1;

    $ok &&= is($r->{status}, $status, "$name: exit status $status");

    for ([ 'stdout', $r->{out}, $out ], [ 'stderr', $r->{err}, $err ]) {
        my ($what, $got, $want) = @$_;
        next unless defined $want;
        if (ref $want eq 'Regexp') {
            $ok &&= like($got, $want, "$name: $what");
        } else {
            $ok &&= is($got, $want, "$name: $what");
        }
    }

    diag(explain($r)) unless $ok;
    return $ok;
}

sub new_path { return "$dir/store" . ++$serial }

sub new_store {
    my $store = new_path();
    my $r = sd($store, 'init');
    die "init $store: $r->{err}" if $r->{status};
    return $store;
}

sub dump_db {
    my ($store, $db) = @_;
    my $r = run_cmd('mdb_dump', '-s', $db, $store);
    die "mdb_dump -s $db $store: $r->{err}" if $r->{status};

    my ($data) = $r->{out} =~ /^HEADER=END\n(.*?)^DATA=END$/ms;
    my @hex = map { s/^ //r } split /\n/, $data // '';
    my @records;
    push @records, [ pack('H*', shift @hex), pack('H*', shift @hex) ]
        while @hex;
    return \@records;
}

sub db_names {
    my ($store) = @_;
    my $r = run_cmd('mdb_dump', '-a', '-p', $store);
    die "mdb_dump -a $store: $r->{err}" if $r->{status};
    return [ $r->{out} =~ /^database=(.*)$/mg ];
}

sub meta {
    my ($store, $name) = @_;
    my ($record) = grep { $_->[0] eq $name } @{ dump_db($store, 'meta') };
    return $record ? $record->[1] : undef;
}

# everything in the store: every database's dump, and data.mdb's bytes
sub snapshot {
    my ($store) = @_;
    my $r = run_cmd('mdb_dump', '-a', $store);
    die "mdb_dump -a $store: $r->{err}" if $r->{status};
    open my $fh, '<:raw', "$store/data.mdb" or die $!;
    local $/;
    return { dump => $r->{out}, file => scalar <$fh> };
}

sub unchanged {
    my ($store, $before, $name) = @_;
    my $after = snapshot($store);
    is($after->{dump}, $before->{dump}, "$name: every database as it was");
    ok($after->{file} eq $before->{file}, "$name: data.mdb byte for byte");
}

# a user record, unpacked: version, flags, created, last_login, changed,
# name, source, hash; undef when there is none
sub user_record {
    my ($store, $name) = @_;
    return undef unless grep { $_ eq 'users' } @{ db_names($store) };
    my ($record) = grep { $_->[0] eq $name } @{ dump_db($store, 'users') };
    return undef unless $record;
    my %r;
    @r{qw(version flags created last_login changed name source hash)}
        = unpack 'V V q< q< q< Z64 Z32 Z128', $record->[1];
    $r{size} = length $record->[1];
    return \%r;
}

# a secret of meta: version, reserved, created, key
sub secret {
    my ($store, $which) = @_;
    my $value = meta($store, $which);
    return undef unless defined $value;
    my %s;
    @s{qw(version reserved created key)} = unpack 'V V q< a32', $value;
    $s{size} = length $value;
    return \%s;
}

# libargon2's own verdict on a password and an encoded hash: 1 or 0
sub argon2_verify {
    my ($encoded, $password) = @_;
    my $r = run_cmd({ stdin => $password }, 'python3', '-c', <<'EOF', $encoded);
import ctypes, sys
pwd = sys.stdin.buffer.read()
rc = ctypes.CDLL("libargon2.so.1").argon2id_verify(
    sys.argv[1].encode(), pwd, ctypes.c_size_t(len(pwd)))
print({0: 1, -35: 0}.get(rc, "error %d" % rc))
EOF
    die "python3: $r->{err}" if $r->{status};
    chomp(my $verdict = $r->{out});
    return $verdict;
}

# a store as the tool made it before users: no "users" database, no JWT
# secret in "meta"; loaded from a new store's dump, one database a load
sub old_store {
    my $new = new_store();
    my $store = new_path();
    mkdir $store or die $!;
    my $r = run_cmd('mdb_dump', '-a', $new);
    die "mdb_dump: $r->{err}" if $r->{status};

    for my $section (split /(?=^VERSION=)/m, $r->{out}) {
        next if $section =~ /^database=users$/m;
        if ($section =~ /^database=meta$/m) {
            my $hex = unpack 'H*', 'jwt_secret';
            $section =~ s/^ \Q$hex\E\n [0-9a-f]+\n//m or die 'no jwt_secret';
        }
        my $file = File::Temp->new();
        print $file $section;
        close $file;
        my $l = run_cmd('mdb_load', '-f', "$file", $store);
        die "mdb_load: $l->{err}" if $l->{status};
    }

    return $store;
}

# the tool at a terminal: what it printed, and its status; lines are
# typed one after each prompt ("password: ", "again: ")
sub sd_tty {
    my ($store, $lines, @args) = @_;
    my $pty = IO::Pty->new();
    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        $pty->make_slave_controlling_terminal();
        my $slave = $pty->slave();
        close $pty;
        open STDIN, '<&', $slave or POSIX::_exit(126);
        open STDOUT, '>&', $slave or POSIX::_exit(126);
        open STDERR, '>&', $slave or POSIX::_exit(126);
        exec $tool, '--store', $store, @args or POSIX::_exit(127);
    }

    $pty->close_slave();
    my $seen = '';
    my @typed = @$lines;
    local $SIG{ALRM} = sub { die "the tool at a terminal hung: $seen\n" };
    alarm 60;

    while (1) {
        my $n = sysread $pty, my $buf, 4096;
        last unless $n;
        $seen .= $buf;
        if (@typed && $seen =~ /(?:password|again): \z/) {
            syswrite $pty, shift(@typed) . "\n";
        }
    }

    alarm 0;
    waitpid $pid, 0;
    return { status => $? >> 8, out => $seen };
}


subtest 'init makes a users database and a JWT secret of 32 random bytes' => sub {
    my $before = time;
    my $store = new_store();
    my $other = new_store();

    ok((grep { $_ eq 'users' } @{ db_names($store) }), 'a "users" database');
    is(scalar @{ dump_db($store, 'users') }, 0, 'with no users');

    my $s = secret($store, 'jwt_secret');
    is($s->{size}, 48, 'jwt_secret is a secret record of 48 bytes');
    is($s->{version}, 1, 'version 1');
    is($s->{reserved}, 0, 'reserved 0');
    ok($s->{created} >= $before && $s->{created} <= time + 1,
       'created now');
    isnt(unpack('H*', $s->{key}), '00' x 32, 'a key that is not zeros');
    isnt($s->{key}, secret($other, 'jwt_secret')->{key},
         'and another store has another one');
    is(meta($store, 'jwt_previous'), undef, 'no previous secret yet');

    result_is(sd($store, qw(user list)), 0, '', '',
              'user list with no users prints nothing');
};


subtest 'user add stores an argon2id hash of the password, which user list never shows' => sub {
    my $store = new_store();
    my $before = time;

    result_is(sdp($store, "correct horse\n", qw(user add alice --source chat)),
              0, "added the user \"alice\" for the source \"chat\"\n", '',
              'add alice (stdin, with a newline)');
    result_is(sdp($store, 'battery staple',
                  qw(user add bob@example.com --source coding)),
              0, "added the user \"bob\@example.com\" for the source \"coding\"\n",
              '', 'add bob (stdin, without a newline)');
    my $after = time;

    my $alice = user_record($store, 'alice');
    is($alice->{size}, 256, 'a user record is 256 bytes');
    is($alice->{version}, 1, 'version 1');
    is($alice->{flags}, 0, 'not disabled');
    ok($alice->{created} >= $before && $alice->{created} <= $after,
       'created now');
    is($alice->{changed}, $alice->{created}, 'the password set then');
    is($alice->{last_login}, 0, 'never logged in');
    is($alice->{name}, 'alice', 'the name');
    is($alice->{source}, 'chat', 'the source');
    like($alice->{hash}, $HASH,
         'the hash: argon2id, v=19, m=65536, t=3, p=1, a salt of 16 bytes '
         . 'and a hash of 32');
    is(length(decode_base64((split /\$/, $alice->{hash})[4])), 16,
       'the salt is 16 bytes');

    my $bob = user_record($store, 'bob@example.com');
    like($bob->{hash}, $HASH, 'bob\'s hash too');
    isnt((split /\$/, $bob->{hash})[4], (split /\$/, $alice->{hash})[4],
         'with a salt of its own');

    is(argon2_verify($alice->{hash}, 'correct horse'), 1,
       'libargon2 verifies alice\'s password, its newline left out');
    is(argon2_verify($alice->{hash}, "correct horse\n"), 0,
       'the newline is not part of it');
    is(argon2_verify($alice->{hash}, 'correct horsf'), 0,
       'another password is refused');
    is(argon2_verify($bob->{hash}, 'battery staple'), 1,
       'bob\'s password without a trailing newline');

    my $r = sd($store, qw(user list));
    result_is($r, 0,
              qr/\Aname\tsource\tstate\tcreated\tlast_login\nalice\tchat\tactive\t$ISO\tnever\nbob\@example\.com\tcoding\tactive\t$ISO\tnever\n\z/,
              '', 'user list: a header, then the users by name');
    unlike($r->{out}, qr/argon2|\$/, 'no hash in the list');

    # the same password twice: two salts, two hashes
    result_is(sdp($store, "correct horse\n", qw(user add carol --source chat)),
              0, undef, '', 'carol with alice\'s password');
    isnt(user_record($store, 'carol')->{hash}, $alice->{hash},
         'not alice\'s hash');
};


subtest 'user add refuses a duplicate, a bad name or source, and leaves the store as it was' => sub {
    my $store = new_store();
    sdp($store, "pw\n", qw(user add alice --source chat));
    my $before = snapshot($store);

    result_is(sdp($store, "other\n", qw(user add alice --source coding)), 2, '',
              "seadragon-store: a user named \"alice\" already exists; remove it first or choose another name\n",
              'a duplicate');
    unchanged($store, $before, 'a duplicate');

    my $long = 'a' x 64;
    for my $name ($long, 'al ice', '', 'tab\there', "new\nline", 'café',
                  'a/b', 'semi;colon')
    {
        my $shown = $name =~ s/\n/\\n/r;
        result_is(sdp($store, "pw\n", qw(user add --source chat --), $name),
                  2, '', qr/^seadragon-store: user add: invalid NAME "\Q$name\E": expected 1 to 63 letters, digits, "_", "-", "\." and "\@"\n/,
                  "the name \"$shown\"");
    }
    unchanged($store, $before, 'bad names');

    result_is(sdp($store, "pw\n", qw(user add), 'a' x 63, qw(--source chat)),
              0, undef, '', 'a name of 63 bytes is one');
    $before = snapshot($store);

    for my $source ('a' x 32, 'has space', '', 'dot.ted', 'at@sign') {
        result_is(sdp($store, "pw\n", qw(user add dave --source), $source),
                  2, '', qr/user add: invalid SOURCE "\Q$source\E": expected 1 to 31 letters, digits, "_" and "-"/,
                  "the source \"$source\"");
    }
    result_is(sdp($store, "pw\n", qw(user add dave)), 2, '',
              qr/user add: --source SOURCE is missing/, 'no source');
    result_is(sdp($store, "pw\n", qw(user add --source chat)), 2, '',
              qr/user add: NAME is missing/, 'no name');
    result_is(sdp($store, "pw\n", qw(user add dave --source chat --password pw)),
              2, '', qr/user add: unknown option "--password"/,
              'a password is never an argument');
    result_is(sdp($store, "pw\n", qw(user add dave pw --source chat)), 2, '',
              qr/user add: unexpected argument "pw"/,
              'nor a second argument');
    unchanged($store, $before, 'bad sources and arguments');

    # the store does not know the sources: any valid name, as for keys
    result_is(sdp($store, "pw\n", qw(user add erin --source nosuchsource)),
              0, "added the user \"erin\" for the source \"nosuchsource\"\n",
              '', 'a source no configuration names is taken');
    is(user_record($store, 'erin')->{source}, 'nosuchsource',
       'and stored');
};


subtest 'a password empty, too long, or with a NUL byte is refused' => sub {
    my $store = new_store();
    sdp($store, "pw\n", qw(user add alice --source chat));
    my $before = snapshot($store);

    for ([ '', 'nothing' ], [ "\n", 'an empty line' ],
         [ "\nsecond line\n", 'an empty first line' ])
    {
        my ($input, $what) = @$_;
        result_is(sdp($store, $input, qw(user add bob --source chat)), 2, '',
                  qr/^seadragon-store: user add: the password is empty; expected 1 to 1024 bytes on the first line of standard input\n/,
                  "add: $what");
        result_is(sdp($store, $input, qw(user passwd alice)), 2, '',
                  qr/user passwd: the password is empty/, "passwd: $what");
    }

    result_is(sdp($store, ('x' x 2048) . "\n", qw(user add bob --source chat)),
              2, '', qr/user add: the password is longer than 1024 bytes; expected 1 to 1024 bytes on one line/,
              'a password of 2 KB');
    result_is(sdp($store, ('x' x 1025), qw(user passwd alice)), 2, '',
              qr/user passwd: the password is longer than 1024 bytes/,
              'a password of 1025 bytes');
    result_is(sdp($store, "a\0b\n", qw(user add bob --source chat)), 2, '',
              qr/user add: the password has a NUL byte/, 'a NUL byte');
    unchanged($store, $before, 'the refused passwords');

    result_is(sdp($store, ('y' x 1024) . "\n", qw(user add bob --source chat)),
              0, undef, '', 'a password of 1024 bytes is one');
    is(argon2_verify(user_record($store, 'bob')->{hash}, 'y' x 1024), 1,
       'and it is stored whole');

    # only the first line is the password
    result_is(sdp($store, "first\nsecond\n", qw(user add carol --source chat)),
              0, undef, '', 'two lines');
    is(argon2_verify(user_record($store, 'carol')->{hash}, 'first'), 1,
       'the first line is the password');
};


subtest 'at a terminal the password is asked for twice with echo off' => sub {
    my $store = new_store();

    my $r = sd_tty($store, [ 'typed secret', 'typed secret' ],
                   qw(user add tina --source chat));
    is($r->{status}, 0, 'the same password twice: exit 0');
    like($r->{out}, qr/\Apassword: \r?\n?again: \r?\n?added the user "tina" for the source "chat"\r?\n\z/,
         'two prompts, and the password never echoed');
    unlike($r->{out}, qr/typed secret/, 'the password is not on the terminal');
    is(argon2_verify(user_record($store, 'tina')->{hash}, 'typed secret'), 1,
       'the typed password is stored');

    my $before = snapshot($store);
    $r = sd_tty($store, [ 'one', 'two' ], qw(user passwd tina));
    is($r->{status}, 2, 'two different passwords: exit 2');
    like($r->{out}, qr/user passwd: the two passwords differ; nothing was changed/,
         'says so');
    unchanged($store, $before, 'passwords that differ');

    $r = sd_tty($store, [ '' ], qw(user passwd tina));
    is($r->{status}, 2, 'an empty password at the prompt: exit 2');
    like($r->{out}, qr/the password is empty; expected 1 to 1024 bytes typed at the prompt/,
         'says so');
    unchanged($store, $before, 'an empty typed password');
};


subtest 'user passwd replaces the hash and its time, and nothing else' => sub {
    my $store = new_store();
    sdp($store, "old password\n", qw(user add alice --source chat));
    sd($store, qw(user disable alice));
    my $old = user_record($store, 'alice');

    sleep 1;    # a new second for "changed"
    result_is(sdp($store, "new password\n", qw(user passwd alice)), 0,
              "changed the password of the user \"alice\"\n", '', 'passwd');
    my $new = user_record($store, 'alice');

    like($new->{hash}, $HASH, 'an argon2id hash');
    isnt($new->{hash}, $old->{hash}, 'a new hash');
    is(argon2_verify($new->{hash}, 'new password'), 1, 'of the new password');
    is(argon2_verify($new->{hash}, 'old password'), 0,
       'the old one no longer');
    ok($new->{changed} > $old->{changed}, 'changed moved on');
    is($new->{$_}, $old->{$_}, "$_ is kept")
        for qw(created last_login flags name source version);

    my $before = snapshot($store);
    result_is(sdp($store, "pw\n", qw(user passwd nobody)), 2, '',
              "seadragon-store: there is no user named \"nobody\" (see \"user list\")\n",
              'an unknown user');
    result_is(sdp($store, "pw\n", qw(user passwd), 'x y'), 2, '',
              qr/user passwd: invalid NAME "x y"/, 'a bad name');
    unchanged($store, $before, 'the refused passwd');
};


subtest 'user disable and enable flip one flag; remove deletes the record' => sub {
    my $store = new_store();
    sdp($store, "pw\n", qw(user add alice --source chat));
    sdp($store, "pw\n", qw(user add bob --source coding));
    my $alice = user_record($store, 'alice');

    result_is(sd($store, qw(user disable alice)), 0,
              "disabled the user \"alice\"\n", '', 'disable');
    is(user_record($store, 'alice')->{flags}, 1, 'the disabled flag');
    is(user_record($store, 'alice')->{hash}, $alice->{hash}, 'the hash kept');
    like(sd($store, qw(user list))->{out},
         qr/^alice\tchat\tdisabled\t$ISO\tnever\nbob\tcoding\tactive\t/m,
         'user list says disabled');

    my $before = snapshot($store);
    result_is(sd($store, qw(user disable alice)), 0,
              "the user \"alice\" is already disabled\n", '', 'disable again');
    unchanged($store, $before, 'disable again');

    result_is(sd($store, qw(user enable alice)), 0,
              "enabled the user \"alice\"\n", '', 'enable');
    is_deeply(user_record($store, 'alice'), $alice,
              'the record is as it was made');

    $before = snapshot($store);
    result_is(sd($store, qw(user enable alice)), 0,
              "the user \"alice\" is already enabled\n", '', 'enable again');
    for my $verb (qw(disable enable remove)) {
        result_is(sd($store, 'user', $verb, 'nobody'), 2, '',
                  "seadragon-store: there is no user named \"nobody\" (see \"user list\")\n",
                  "$verb an unknown user");
        result_is(sd($store, 'user', $verb, 'a' x 64), 2, '',
                  qr/user $verb: invalid NAME/, "$verb a name of 64 bytes");
        result_is(sd($store, 'user', $verb), 2, '',
                  qr/user $verb: NAME is missing/, "$verb without a name");
    }
    result_is(sd($store, qw(user list extra)), 2, '',
              qr/user list: unexpected argument "extra"/, 'list extra');
    result_is(sd($store, qw(user)), 2, '',
              qr/"user" needs a command: add, passwd, disable, enable, remove or list/,
              'user alone');
    result_is(sd($store, qw(user frob)), 2, '',
              qr/unknown command "user frob"/, 'user frob');
    result_is(sd($store, qw(secret)), 2, '',
              qr/"secret" needs a command: rotate/, 'secret alone');
    result_is(sd($store, qw(secret rotate now)), 2, '',
              qr/secret rotate: unexpected argument "now"/, 'rotate extra');
    unchanged($store, $before, 'the refusals');

    result_is(sd($store, qw(user remove alice)), 0,
              "removed the user \"alice\"\n", '', 'remove');
    is(user_record($store, 'alice'), undef, 'the record is gone');
    is(user_record($store, 'bob')->{name}, 'bob', 'bob is kept');
    like(sd($store, qw(user list))->{out},
         qr/\Aname\tsource\tstate\tcreated\tlast_login\nbob\tcoding\tactive\t$ISO\tnever\n\z/,
         'user list shows bob alone');

    result_is(sdp($store, "again\n", qw(user add alice --source coding)), 0,
              undef, '', 'the name can be taken again');
    is(user_record($store, 'alice')->{source}, 'coding', 'anew');
};


subtest 'secret rotate moves jwt_secret to jwt_previous and makes a new one' => sub {
    my $store = new_store();
    my $first = secret($store, 'jwt_secret');

    sleep 1;    # a new second for "created"
    my $before = time;
    result_is(sd($store, qw(secret rotate)), 0,
              "rotated the JWT secret: new login tokens are signed with a new one; those of the previous one are accepted until they expire\n",
              '', 'rotate');
    my $second = secret($store, 'jwt_secret');
    my $previous = secret($store, 'jwt_previous');

    is($previous->{key}, $first->{key},
       'jwt_previous holds the old jwt_secret\'s key');
    is($previous->{size}, 48, 'a secret record');
    is($previous->{version}, 1, 'of version 1');
    ok($previous->{created} >= $before, 'created: when it was retired');
    isnt($second->{key}, $first->{key}, 'jwt_secret is a new key');
    ok($second->{created} >= $before, 'made now');

    result_is(sd($store, qw(secret rotate)), 0, qr/^rotated/, '',
              'rotate again');
    is(secret($store, 'jwt_previous')->{key}, $second->{key},
       'the previous one is the last one only');
    isnt(secret($store, 'jwt_secret')->{key}, $second->{key}, 'a third key');
};


subtest 'a damaged user record or secret is refused, never guessed' => sub {
    my $store = new_store();
    sdp($store, "pw\n", qw(user add alice --source chat));
    my ($record) = grep { $_->[0] eq 'alice' } @{ dump_db($store, 'users') };

    # a record one byte short, and one of version 2, behind the tool's back
    for ([ 'short', substr($record->[1], 0, 255) ],
         [ 'version2', pack('V', 2) . substr($record->[1], 4) ])
    {
        my ($name, $value) = @$_;
        my $input = File::Temp->new();
        print $input "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n",
                     ' ', unpack('H*', $name), "\n ", unpack('H*', $value),
                     "\nDATA=END\n";
        close $input;
        my $r = run_cmd('mdb_load', '-s', 'users', '-f', "$input", $store);
        die "mdb_load: $r->{err}" if $r->{status};
    }

    my $before = snapshot($store);
    for my $name (qw(short version2)) {
        result_is(sd($store, qw(user disable), $name), 3, '',
                  qr/cannot read the store "\Q$store\E": finding the user: MDB_CORRUPTED/,
                  "disable \"$name\"");
        result_is(sdp($store, "pw\n", qw(user passwd), $name), 3, '',
                  qr/finding the user: MDB_CORRUPTED/, "passwd \"$name\"");
        result_is(sdp($store, "pw\n", qw(user add), $name, qw(--source chat)),
                  3, '', qr/finding the user: MDB_CORRUPTED/,
                  "add over \"$name\"");
    }
    result_is(sd($store, qw(user list)), 3, undef,
              qr/reading the users: MDB_CORRUPTED/, 'user list');
    unchanged($store, $before, 'the damaged records');

    result_is(sd($store, qw(user remove short)), 0,
              "removed the user \"short\"\n", '',
              'a damaged record can be removed');
    sd($store, qw(user remove version2));
    like(sd($store, qw(user list))->{out}, qr/^alice\t/m, 'the list reads again');

    # a secret of another size
    my $input = File::Temp->new();
    print $input "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n",
                 ' ', unpack('H*', 'jwt_secret'), "\n ", '00' x 47,
                 "\nDATA=END\n";
    close $input;
    my $r = run_cmd('mdb_load', '-s', 'meta', '-f', "$input", $store);
    die "mdb_load: $r->{err}" if $r->{status};
    $before = snapshot($store);
    result_is(sd($store, qw(secret rotate)), 3, '',
              qr/reading the JWT secret: MDB_CORRUPTED/,
              'a secret of 47 bytes');
    result_is(sdp($store, "pw\n", qw(user add bob --source chat)), 3, '',
              qr/the JWT secret: MDB_CORRUPTED/, 'and user add');
    unchanged($store, $before, 'the damaged secret');
};


subtest 'a store made before users works for the old commands and gains users on the first user add' => sub {
    my $store = old_store();
    is_deeply(db_names($store), [qw(key_names keys meta usage whitelist)],
              'the old store has no "users" database');
    is(meta($store, 'jwt_secret'), undef, 'and no JWT secret');
    my $old = snapshot($store);

    result_is(sd($store, qw(user list)), 0, '', '', 'user list: no users');
    result_is(sd($store, qw(user disable alice)), 2, '',
              qr/there is no user named "alice"/, 'disable: none');
    result_is(sd($store, qw(user remove alice)), 2, '',
              qr/there is no user named "alice"/, 'remove: none');
    result_is(sdp($store, "pw\n", qw(user passwd alice)), 2, '',
              qr/there is no user named "alice"/, 'passwd: none');
    result_is(sdp($store, "\n", qw(user add alice --source chat)), 2, '',
              qr/the password is empty/, 'add with an empty password');
    result_is(sd($store, 'init'), 0, "$store is already initialized (map size 64m)\n",
              '', 'init');
    unchanged($store, $old, 'the reads and refusals');

    result_is(sd($store, qw(whitelist add 10.0.0.0/8)), 0, undef, '',
              'whitelist add');
    like(sd($store, qw(whitelist list))->{out}, qr{^10\.0\.0\.0/8\t}, 'listed');
    my $k = sd($store, qw(key create tool --source coding));
    is($k->{status}, 0, 'key create');
    like(sd($store, qw(key list))->{out}, qr/^tool\tcoding\tactive\t/m,
         'key list');
    result_is(sd($store, qw(key disable tool)), 0, undef, '', 'key disable');
    result_is(sd($store, qw(key revoke tool)), 0, undef, '', 'key revoke');
    result_is(sd($store, 'usage'), 0, qr/^principal\t/, '', 'usage');
    is_deeply(db_names($store), [qw(key_names keys meta usage whitelist)],
              'the old commands made no "users" database');
    is(meta($store, 'jwt_secret'), undef, 'nor a secret');

    result_is(sdp($store, "pw\n", qw(user add alice --source chat)), 0,
              "made the store's JWT secret, which signs login tokens (the store was made before logins)\n"
              . "added the user \"alice\" for the source \"chat\"\n", '',
              'the first user add says it made the secret');
    is_deeply(db_names($store),
              [qw(key_names keys meta usage users whitelist)],
              'the store has a "users" database now');
    like(user_record($store, 'alice')->{hash}, $HASH, 'with alice');
    is(secret($store, 'jwt_secret')->{size}, 48, 'and a JWT secret');
    is(meta($store, 'jwt_previous'), undef, 'and no previous one');

    result_is(sdp($store, "pw\n", qw(user add bob --source chat)), 0,
              "added the user \"bob\" for the source \"chat\"\n", '',
              'the second says nothing of it');

    my $other = old_store();
    result_is(sd($other, qw(secret rotate)), 0,
              "made the store's JWT secret, which signs login tokens (the store was made before logins)\n",
              '', 'secret rotate on an old store makes the first secret');
    is(secret($other, 'jwt_secret')->{size}, 48, 'jwt_secret is there');
    is(meta($other, 'jwt_previous'), undef, 'with no previous one');
    ok(!grep({ $_ eq 'users' } @{ db_names($other) }),
       'and still no "users" database: no user was added');
};


done_testing();
