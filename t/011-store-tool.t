# scripts/seadragon-store, the operators' tool for the store: every
# command, every bad input, and what each leaves in the store, read back
# with the tool itself and with lmdb-utils (mdb_dump, mdb_stat).
use strict;
use warnings;
use FindBin;
use Test::More;
use File::Temp ();
use Digest::SHA qw(sha256);
use POSIX ();
use Time::Local qw(timegm);

my $tool = "$FindBin::Bin/../build/seadragon-store";

plan skip_all => "build/seadragon-store is not built: run make" unless -x $tool;

for my $util (qw(mdb_dump mdb_stat mdb_load)) {
    plan skip_all => "$util is missing: apt-get install lmdb-utils"
        unless grep { -x "$_/$util" } split /:/, $ENV{PATH};
}

my $dir = File::Temp->newdir();
my $serial = 0;

my $KEY = qr/sd-[A-Za-z0-9_-]{43}/;
my $ISO = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/;


# Runs a command with stdin from /dev/null: { status, out, err }.
# Options: env => { NAME => value or undef }, umask => mode.
sub run_cmd {
    my $opts = ref $_[0] eq 'HASH' ? shift : {};
    my @cmd = @_;
    my $out = File::Temp->new();
    my $err = File::Temp->new();

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        while (my ($k, $v) = each %{ $opts->{env} || {} }) {
            if (defined $v) { $ENV{$k} = $v } else { delete $ENV{$k} }
        }
        umask $opts->{umask} if defined $opts->{umask};
        open STDIN, '<', '/dev/null' or POSIX::_exit(126);
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

# the tool on one store
sub sd {
    my $opts = ref $_[0] eq 'HASH' ? shift : {};
    my $store = shift;
    return run_cmd($opts, $tool, '--store', $store, @_);
}

# status, stdout (string or regexp), stderr (string or regexp)
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
    my $r = sd($store, 'init', @_);
    die "init $store: $r->{err}" if $r->{status};
    return $store;
}

# the records of one database, as [ key bytes, value bytes ]
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

# the whitelist's counts of entries per prefix length, as the module reads
sub counts {
    my ($store, $family) = @_;
    my $value = meta($store, "prefixes$family");
    return defined $value ? [ unpack 'V*', $value ] : undef;
}

# the counts the entries themselves imply
sub expected_counts {
    my ($store) = @_;
    my %counts = (4 => [ (0) x 33 ], 6 => [ (0) x 129 ]);
    for (@{ dump_db($store, 'whitelist') }) {
        my ($family, $prefix) = unpack 'CC', $_->[0];
        $counts{$family}[$prefix]++;
    }
    return \%counts;
}

sub counts_are_exact {
    my ($store, $name) = @_;
    my $expected = expected_counts($store);
    is_deeply(counts($store, 4), $expected->{4}, "$name: IPv4 prefix counts");
    is_deeply(counts($store, 6), $expected->{6}, "$name: IPv6 prefix counts");
}

sub entries {
    my ($store, $db) = @_;
    my $r = run_cmd('mdb_stat', '-s', $db, $store);
    die "mdb_stat -s $db $store: $r->{err}" if $r->{status};
    my ($n) = $r->{out} =~ /Entries: (\d+)/;
    return $n;
}

sub map_size {
    my ($store) = @_;
    my $r = run_cmd('mdb_stat', '-e', $store);
    my ($size) = $r->{out} =~ /Map size: (\d+)/;
    return $size;
}

sub list_of {
    my ($store, $what) = @_;
    my $r = sd($store, $what, 'list');
    die "$what list: $r->{err}" if $r->{status};
    return $r->{out};
}

sub iso_time {
    my ($text) = @_;
    my ($y, $mo, $d, $h, $mi, $s) = $text =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/
        or return undef;
    return timegm($s, $mi, $h, $d, $mo - 1, $y);
}

# a key record: version, flags, created, expires, name, source
sub key_record {
    my ($store, $name) = @_;
    my ($named) = grep { $_->[0] eq $name } @{ dump_db($store, 'key_names') };
    return undef unless $named;
    my ($record) = grep { $_->[0] eq $named->[1] } @{ dump_db($store, 'keys') };
    return undef unless $record;
    my %r;
    @r{qw(version flags created expires name source tokens_per_day rpm
          max_concurrent weight)}
        = unpack 'V V q< q< Z64 Z32 Q< V V V', $record->[1];
    $r{$_} //= 0 for qw(tokens_per_day rpm max_concurrent weight);
    $r{hash} = $named->[1];
    $r{size} = length $record->[1];
    return \%r;
}

# writes records into a database behind the tool's back
sub load_db {
    my ($store, $db, %records) = @_;
    my $input = File::Temp->new();
    print $input "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n";
    print $input ' ', unpack('H*', $_), "\n ", unpack('H*', $records{$_}), "\n"
        for sort keys %records;
    print $input "DATA=END\n";
    close $input;
    my $r = run_cmd('mdb_load', '-s', $db, '-f', "$input", $store);
    die "mdb_load -s $db $store: $r->{err}" if $r->{status};
}

sub mode_of { return sprintf '%04o', (stat $_[0])[2] & 07777 }


subtest 'help prints the usage of every command and exits 0' => sub {
    for my $args ([ '-h' ], [ '--help' ], [ qw(whitelist add --help) ],
                  [ qw(key create -h) ])
    {
        my $r = run_cmd($tool, @$args);
        result_is($r, 0, qr/^usage: seadragon-store \[--store PATH\] COMMAND/,
                  '', "@$args");
        like($r->{out}, qr/^  \Q$_\E$/m, "@$args: lists \"$_\"")
            for 'init [--map-size SIZE]',
                'whitelist add ADDR|CIDR [--note TEXT]',
                'whitelist remove ADDR|CIDR', 'whitelist list',
                'whitelist check ADDR',
                'key create NAME --source SOURCE [--expires WHEN] [--rpm N] '
                . '[--tokens-per-day N] [--max-concurrent N] [--weight N]',
                'key revoke NAME', 'key disable NAME', 'key enable NAME',
                'key set NAME [--rpm N|none] [--tokens-per-day N|none] '
                . '[--max-concurrent N|none] [--weight N]',
                'key list';
        like($r->{out}, qr/exit status: 0 done; 1 .*; 2 bad usage/s,
             "@$args: explains the exit statuses");
    }
};


subtest 'bad usage exits 2 with a message that says what was expected' => sub {
    my $store = new_store();
    my @cases = (
        [ [], qr/^seadragon-store: no command given\ntry "seadragon-store --help"\n\z/ ],
        [ [ '--verbose', 'key', 'list' ], qr/unknown option "--verbose"/ ],
        [ [ 'frob' ], qr/unknown command "frob"; expected init, whitelist, key or usage/ ],
        [ [ 'whitelist' ], qr/"whitelist" needs a command: add, remove, list or check/ ],
        [ [ 'key' ], qr/"key" needs a command: create, revoke, disable, enable, set or list/ ],
        [ [ 'whitelist', 'frob' ], qr/unknown command "whitelist frob"/ ],
        [ [ 'key', 'frob' ], qr/unknown command "key frob"/ ],
        [ [ 'whitelist', 'add' ], qr/^seadragon-store: whitelist add: ADDR\|CIDR is missing\nusage: seadragon-store \[--store PATH\] whitelist add ADDR\|CIDR \[--note TEXT\]\n\z/ ],
        [ [ 'whitelist', 'remove' ], qr/whitelist remove: ADDR\|CIDR is missing/ ],
        [ [ 'whitelist', 'check' ], qr/whitelist check: ADDR is missing/ ],
        [ [ 'key', 'create', '--source', 'chat' ], qr/key create: NAME is missing/ ],
        [ [ 'key', 'revoke' ], qr/key revoke: NAME is missing/ ],
        [ [ 'key', 'disable' ], qr/key disable: NAME is missing/ ],
        [ [ 'key', 'enable' ], qr/key enable: NAME is missing/ ],
        [ [ 'whitelist', 'list', 'extra' ], qr/whitelist list: unexpected argument "extra"/ ],
        [ [ 'key', 'list', 'extra' ], qr/key list: unexpected argument "extra"/ ],
        [ [ 'init', 'extra' ], qr/init: unexpected argument "extra"/ ],
        [ [ 'whitelist', 'add', '10.0.0.1', '10.0.0.2' ], qr/unexpected argument "10.0.0.2"/ ],
        [ [ 'whitelist', 'check', '10.0.0.1', '--note', 'x' ], qr/whitelist check: unknown option "--note"/ ],
        [ [ 'whitelist', 'add', '10.0.0.1', '--note' ], qr/whitelist add: --note needs a value/ ],
        [ [ 'whitelist', 'add', '10.0.0.1', '--note', 'a', '--note', 'b' ], qr/--note is given twice/ ],
        [ [ 'key', 'create', 'x', '--source' ], qr/--source needs a value/ ],
        [ [ 'key', 'revoke', 'x', '--source', 'y' ], qr/key revoke: unknown option "--source"/ ],
        [ [ 'init', '--note', 'x' ], qr/init: unknown option "--note"/ ],
    );

    for (@cases) {
        my ($args, $err) = @$_;
        result_is(sd($store, @$args), 2, '', $err, "\"@$args\"");
    }

    result_is(run_cmd($tool, '--store'), 2, '', qr/--store needs a PATH/,
              '--store without a path');
    result_is(run_cmd($tool, '--store=', 'key', 'list'), 2, '',
              qr/--store needs a PATH/, '--store= with an empty path');

    is(list_of($store, 'whitelist') . list_of($store, 'key'), '',
       'none of them changed the store');
};


subtest 'the store is --store, else $SEADRAGON_STORE, else /var/lib/seadragon/store' => sub {
    my $from_env = new_store();
    my $from_option = new_store();
    sd($from_env, qw(whitelist add 10.0.0.1));
    sd($from_option, qw(whitelist add 10.0.0.2));

    my $r = run_cmd({ env => { SEADRAGON_STORE => $from_env } },
                    $tool, qw(whitelist list));
    result_is($r, 0, qr/^10\.0\.0\.1\t/, '', '$SEADRAGON_STORE');

    $r = run_cmd({ env => { SEADRAGON_STORE => $from_env } },
                 $tool, "--store=$from_option", qw(whitelist list));
    result_is($r, 0, qr/^10\.0\.0\.2\t/, '', '--store=PATH wins over it');

    SKIP: {
        skip '/var/lib/seadragon/store exists on this machine', 2
            if -e '/var/lib/seadragon/store';
        $r = run_cmd({ env => { SEADRAGON_STORE => undef } },
                     $tool, qw(whitelist list));
        result_is($r, 3, '',
                  qr{cannot open the store "/var/lib/seadragon/store"},
                  'the default path');
    }
};


subtest 'init creates the directories, the environment, the databases and the marker' => sub {
    my $parent = new_path();
    my $store = "$parent/a/b";
    my $r = sd({ umask => 077 }, $store, 'init');
    result_is($r, 0, "initialized $store (map size 64m)\n", '', 'init');

    is(mode_of($_), '0755', "$_ is 0755 whatever the umask")
        for $parent, "$parent/a", $store;
    is(mode_of("$store/$_"), '0644', "$_ is 0644 whatever the umask")
        for 'data.mdb', 'lock.mdb';

    is_deeply(db_names($store), [qw(key_names keys meta usage whitelist)],
              'the five named databases');
    is(meta($store, 'format'), 'seadragon-store 1', 'the format marker');
    is_deeply(counts($store, 4), [ (0) x 33 ], '33 zero IPv4 prefix counts');
    is_deeply(counts($store, 6), [ (0) x 129 ], '129 zero IPv6 prefix counts');
    is(map_size($store), 64 * 1024 * 1024, 'the default map size is 64m');
    is(entries($store, $_), 0, "$_ is empty") for qw(whitelist keys key_names);
};


subtest 'init takes a map size with a k, m or g suffix, or in bytes' => sub {
    for (['1g', 1 << 30], ['512K', 512 << 10], ['65536', 65536],
         ['3M', 3 << 20])
    {
        my ($size, $bytes) = @$_;
        my $store = new_path();
        my $r = sd($store, 'init', '--map-size', $size);
        result_is($r, 0, qr/^initialized \Q$store\E \(map size /, '',
                  "--map-size $size");
        is(map_size($store), $bytes, "--map-size $size is $bytes bytes");
    }
};


subtest 'init refuses a map size that is not one, or is below 64k' => sub {
    for my $size ('', 'abc', '10x', '64mb', '-5m', '1.5g', '63k', '0',
                  '99999999999999999999', '9999999999999g')
    {
        my $store = new_path();
        result_is(sd($store, 'init', "--map-size=$size"), 2, '',
                  qr/init: invalid --map-size "\Q$size\E": expected a size of at least 64k, such as 64m/,
                  "--map-size \"$size\"");
        ok(!-e $store, "--map-size \"$size\": nothing was created");
    }
};


subtest 'init on a store of this format says so and keeps its data' => sub {
    my $store = new_store();
    sd($store, qw(whitelist add 10.0.0.0/8));

    result_is(sd($store, 'init'), 0,
              "$store is already initialized (map size 64m)\n", '',
              'init again');
    result_is(sd($store, qw(init --map-size 32m)), 0,
              "$store is already initialized (map size 64m)\n", '',
              'a smaller map size');
    is(map_size($store), 64 << 20, 'the map never shrinks');

    result_is(sd($store, qw(init --map-size 128m)), 0,
              "$store is already initialized; its map size grew from 64m to 128m\n",
              '', 'a larger map size');
    is(map_size($store), 128 << 20, 'the map grew, as LMDB records it');
    like(list_of($store, 'whitelist'), qr{^10\.0\.0\.0/8\t}, 'the data is kept');
    counts_are_exact($store, 'after growing');
};


subtest 'init accepts an empty directory, or one with only a reader\'s lock file' => sub {
    my $empty = new_path();
    mkdir $empty or die $!;
    result_is(sd($empty, 'init'), 0, "initialized $empty (map size 64m)\n",
              '', 'an empty directory');

    my $locked = new_path();
    mkdir $locked or die $!;
    open my $fh, '>', "$locked/lock.mdb" or die $!;
    close $fh;
    result_is(sd($locked, 'init'), 0, qr/^initialized/, '',
              'a directory with only lock.mdb');
    is(meta($locked, 'format'), 'seadragon-store 1', 'it is a store now');

    my $bare = new_path();
    mkdir $bare or die $!;
    my $r = run_cmd({}, 'sh', '-c', "printf '' | mdb_load -T '$bare'");
    die $r->{err} if $r->{status};
    result_is(sd($bare, qw(init --map-size 1m)), 0,
              "initialized $bare (map size 1m)\n", '',
              'an LMDB environment with nothing in it');
    is_deeply(db_names($bare), [qw(key_names keys meta usage whitelist)],
              'it got the five databases');
};


subtest 'init refuses a path that holds something else' => sub {
    my $file = new_path();
    open my $fh, '>', $file or die $!;
    close $fh;
    result_is(sd($file, 'init'), 3, '',
              qr/^seadragon-store: cannot create the store "\Q$file\E": the path is not a directory: Not a directory\n\z/,
              'a file');

    my $other = new_path();
    mkdir $other or die $!;
    open $fh, '>', "$other/notes.txt" or die $!;
    close $fh;
    result_is(sd($other, 'init'), 3, '',
              qr/cannot create the store "\Q$other\E": the directory holds other files and no store; expected a new or empty directory/,
              'a directory with other files');
    ok(!-e "$other/data.mdb" && !-e "$other/lock.mdb",
       'nothing was added to it');

    my $foreign = new_path();
    mkdir $foreign or die $!;
    my $r = run_cmd('sh', '-c', "printf 'hello\\nworld\\n' | mdb_load -T '$foreign'");
    die $r->{err} if $r->{status};
    result_is(sd($foreign, 'init'), 3, '',
              qr/cannot create the store "\Q$foreign\E": it holds an LMDB environment of another kind \(no "seadragon-store 1" format marker\)/,
              'an LMDB environment of another kind');
    is_deeply(db_names($foreign), [], 'it was left alone');

    my $future = new_store();
    load_db($future, 'meta', format => 'seadragon-store 2');
    result_is(sd($future, 'init'), 3, '',
              qr/"\Q$future\E" is not a seadragon store: it has no "seadragon-store 1" format marker/,
              'a store of another format');
    is(meta($future, 'format'), 'seadragon-store 2', 'its marker was left alone');

    SKIP: {
        skip 'root may write anywhere', 2 if $> == 0;
        my $locked = new_path();
        mkdir $locked, 0555 or die $!;
        result_is(sd("$locked/store", 'init'), 3, '',
                  qr/cannot create the store "\Q$locked\E\/store": mkdir\(\): Permission denied/,
                  'a directory it may not write');
    }
};


subtest 'other commands never create a store, and name the path when there is none' => sub {
    my @commands = ([qw(whitelist add 10.0.0.1)], [qw(whitelist remove 10.0.0.1)],
                    [qw(whitelist list)], [qw(whitelist check 10.0.0.1)],
                    [qw(key create a --source b)], [qw(key revoke a)],
                    [qw(key disable a)], [qw(key enable a)], [qw(key list)]);

    my $missing = new_path();
    my $empty = new_path();
    mkdir $empty or die $!;

    for my $store ($missing, $empty) {
        for (@commands) {
            result_is(sd($store, @$_), 3, '',
                      qr/^seadragon-store: cannot open the store "\Q$store\E": \Q$store\E\/data.mdb: No such file or directory; create it with "seadragon-store --store \Q$store\E init"\n\z/,
                      "\"@$_\" on " . (-d $store ? 'an empty directory' : 'no directory'));
        }
    }

    ok(!-e $missing, 'no directory was created');
    opendir my $dh, $empty or die $!;
    is_deeply([ grep { !/^\.\.?$/ } readdir $dh ], [], 'no file was created');
};


subtest 'a store without this format marker is refused with status 3' => sub {
    my $foreign = new_path();
    mkdir $foreign or die $!;
    my $r = run_cmd('sh', '-c', "printf 'hello\\nworld\\n' | mdb_load -T '$foreign'");
    die $r->{err} if $r->{status};

    my $future = new_store();
    load_db($future, 'meta', format => 'seadragon-store 2');

    my $garbage = new_path();
    mkdir $garbage or die $!;
    open my $fh, '>', "$garbage/data.mdb" or die $!;
    print $fh "this is not an LMDB file\n" x 512;
    close $fh;

    for ([qw(whitelist add 10.0.0.1)], [qw(whitelist list)],
         [qw(whitelist check 10.0.0.1)], [qw(key create a --source b)],
         [qw(key list)], [qw(key revoke a)])
    {
        for my $store ($foreign, $future) {
            result_is(sd($store, @$_), 3, '',
                      qr/^seadragon-store: "\Q$store\E" is not a seadragon store: it has no "seadragon-store 1" format marker\n\z/,
                      "\"@$_\" on " . ($store eq $foreign ? 'another environment' : 'another format'));
        }
        result_is(sd($garbage, @$_), 3, '',
                  qr/^seadragon-store: cannot open the store "\Q$garbage\E": data.mdb is not an LMDB file \(overwritten\?\); restore it from a copy, or move it away and create a new store with "seadragon-store --store \Q$garbage\E init"\n\z/,
                  "\"@$_\" on a file that is not LMDB's");
    }

    is(entries($future, 'whitelist'), 0, 'nothing was written');
};


subtest 'a truncated data.mdb is refused, never made a new store: not even by init' => sub {
    my $store = new_store();
    truncate "$store/data.mdb", 0 or die $!;

    for ([qw(init)], [qw(whitelist add 10.0.0.1)], [qw(whitelist list)],
         [qw(key create a --source b)], [qw(key list)], [qw(key revoke a)])
    {
        result_is(sd($store, @$_), 3, '',
                  qr/^seadragon-store: cannot open the store "\Q$store\E": data.mdb is empty \(truncated\?\); restore it from a copy, or move it away and create a new store with "seadragon-store --store \Q$store\E init"\n\z/,
                  "\"@$_\" on an empty data.mdb");
    }

    is(-s "$store/data.mdb", 0, 'data.mdb is still empty');
};


subtest 'whitelist add takes an address or a range, IPv4 or IPv6' => sub {
    my $store = new_store();
    my $before = time;

    for (['10.0.0.0/8', '10.0.0.0/8'], ['192.168.1.7', '192.168.1.7'],
         ['2001:DB8::/32', '2001:db8::/32'], ['2001:db8::1', '2001:db8::1'],
         ['::ffff:172.16.0.0/108', '172.16.0.0/12'],
         ['::ffff:203.0.113.9', '203.0.113.9'], ['0.0.0.0/0', '0.0.0.0/0'],
         ['::/0', '::/0'], ['10.0.0.0/08', '10.0.0.0/8x'])
    {
        my ($given, $listed) = @$_;
        next if $listed =~ s/x$//;     # the same as an earlier one
        result_is(sd($store, qw(whitelist add), $given), 0,
                  "whitelisted $listed\n", '', "add $given");
    }

    my $after = time;
    my @lines = split /\n/, list_of($store, 'whitelist');

    is_deeply([ map { (split /\t/)[0] } @lines ],
              [ '0.0.0.0/0', '10.0.0.0/8', '172.16.0.0/12', '192.168.1.7',
                '203.0.113.9', '::/0', '2001:db8::/32', '2001:db8::1' ],
              'listed as entered, normalized, IPv4 first, sorted');

    for (@lines) {
        my ($cidr, $created, $note, @more) = split /\t/, $_, -1;
        my $t = iso_time($created);
        ok(defined $t && $t >= $before && $t <= $after,
           "$cidr: created is now, in ISO 8601 UTC ($created)");
        is($note, '', "$cidr: no note");
        is(scalar @more, 0, "$cidr: three columns");
    }

    is(entries($store, 'whitelist'), 8, 'eight entries in the database');
    is(counts($store, 4)->[8], 1, 'one IPv4 entry of length 8');
    is(counts($store, 4)->[32], 2, 'two IPv4 entries of length 32');
    is(counts($store, 4)->[0], 1, 'one IPv4 entry of length 0');
    is(counts($store, 6)->[128], 1, 'one IPv6 entry of length 128');
    counts_are_exact($store, 'after adding');

    my ($record) = grep { $_->[0] eq pack('CCC4', 4, 8, 10, 0, 0, 0) }
                   @{ dump_db($store, 'whitelist') };
    ok($record, 'the key of 10.0.0.0/8 is family, prefix length, address');
    is(length $record->[1], 72, 'the entry is an int64 and a 64-byte note');
};


subtest 'whitelist add keeps a note of up to 63 bytes' => sub {
    my $store = new_store();
    my $note63 = 'n' x 63;

    result_is(sd($store, qw(whitelist add 10.0.0.0/8 --note), 'the office LAN'),
              0, "whitelisted 10.0.0.0/8\n", '', '--note TEXT');
    result_is(sd($store, qw(whitelist add 10.1.0.0/16), "--note=caf\x{c3}\x{a9}"),
              0, "whitelisted 10.1.0.0/16\n", '', '--note=TEXT, UTF-8');
    result_is(sd($store, qw(whitelist add 10.2.0.0/16 --note), $note63),
              0, "whitelisted 10.2.0.0/16\n", '', 'a note of 63 bytes');

    my %notes = map { (split /\t/, $_, -1)[0, 2] }
                split /\n/, list_of($store, 'whitelist');
    is_deeply(\%notes, { '10.0.0.0/8' => 'the office LAN',
                         '10.1.0.0/16' => "caf\x{c3}\x{a9}",
                         '10.2.0.0/16' => $note63 }, 'the notes as listed');

    my $listed = list_of($store, 'whitelist');

    result_is(sd($store, qw(whitelist add 10.3.0.0/16 --note), 'n' x 64), 2,
              '', qr/whitelist add: the note is 64 bytes long; expected at most 63\n/,
              'a note of 64 bytes');
    for my $bad ("two\tcolumns", "two\nlines", "bell\x07") {
        result_is(sd($store, qw(whitelist add 10.3.0.0/16 --note), $bad), 2,
                  '', qr/the note has a control character .*; expected printable text/,
                  'a note with a control character');
    }

    is(list_of($store, 'whitelist'), $listed, 'the refused ones were not added');
    counts_are_exact($store, 'after notes');
};


subtest 'whitelist add refuses what is not an address or range' => sub {
    my $store = new_store();
    sd($store, qw(whitelist add 10.0.0.0/8));
    my $listed = list_of($store, 'whitelist');
    my $counts = counts($store, 4);

    my @cases = (
        [ 'example.com', qr/not an IP address or CIDR range/ ],
        [ '10.0.0.256', qr/not an IP address or CIDR range/ ],
        [ '10.0.0', qr/not an IP address or CIDR range/ ],
        [ '', qr/not an IP address or CIDR range/ ],
        [ '1' x 70, qr/not an IP address or CIDR range/ ],
        [ '10.0.0.0/33', qr/an IPv4 prefix length is 0 to 32/ ],
        [ '2001:db8::/129', qr/an IPv6 prefix length is 0 to 128/ ],
        [ '10.0.0.0/', qr/the prefix length after "\/" must be a number/ ],
        [ '10.0.0.0/abc', qr/the prefix length after "\/" must be a number/ ],
        [ '10.0.0.0/-8', qr/the prefix length after "\/" must be a number/ ],
        [ '10.0.0.0/8/8', qr/an IPv4 prefix length is 0 to 32/ ],
        [ '10.0.0.1/8', qr/the address has host bits set beyond its prefix length; expected an address such as 10.0.0.1 or a range such as 10.0.0.0\/8 or 2001:db8::\/32; did you mean 10.0.0.0\/8\?/ ],
        [ '2001:db8::1/32', qr/host bits set .*; did you mean 2001:db8::\/32\?/ ],
        [ '::ffff:10.0.0.1/104', qr/host bits set beyond its prefix length; expected an address/ ],
    );

    for (@cases) {
        my ($addr, $err) = @$_;
        my $r = sd($store, qw(whitelist add), $addr);
        result_is($r, 2, '', qr/^seadragon-store: whitelist add: invalid ADDR\|CIDR "\Q$addr\E": /,
                  "add \"$addr\"");
        like($r->{err}, $err, "add \"$addr\": says why");
        unlike($r->{err}, qr/did you mean/, "add \"$addr\": no guess")
            unless $r->{err} =~ /host bits/;
        like($r->{err}, qr/\nusage: seadragon-store \[--store PATH\] whitelist add ADDR\|CIDR \[--note TEXT\]\n\z/,
             "add \"$addr\": shows the usage");
    }

    is(list_of($store, 'whitelist'), $listed, 'nothing was added');
    is_deeply(counts($store, 4), $counts, 'the counts did not change');
};


subtest 'whitelist add refuses a duplicate, however it is written' => sub {
    my $store = new_store();
    sd($store, qw(whitelist add 10.0.0.0/8 --note first));
    sd($store, qw(whitelist add 2001:db8::/32));
    my $listed = list_of($store, 'whitelist');

    for (['10.0.0.0/8', '10.0.0.0/8'], ['::ffff:10.0.0.0/104', '10.0.0.0/8'],
         ['2001:0db8:0000::/32', '2001:db8::/32'])
    {
        my ($given, $entry) = @$_;
        result_is(sd($store, qw(whitelist add), $given, '--note', 'second'), 2,
                  '', "seadragon-store: $entry is already whitelisted\n",
                  "add $given again");
    }

    is(list_of($store, 'whitelist'), $listed, 'the entries and notes are unchanged');
    counts_are_exact($store, 'after duplicates');
    is(counts($store, 4)->[8], 1, 'still one entry of length 8');
};


subtest 'whitelist remove deletes the entry and its count' => sub {
    my $store = new_store();
    sd($store, qw(whitelist add), $_)
        for qw(10.0.0.0/8 10.1.0.0/16 10.2.0.0/16 2001:db8::/32 192.168.1.7);

    result_is(sd($store, qw(whitelist remove 10.1.0.0/16)), 0,
              "removed 10.1.0.0/16 from the whitelist\n", '', 'remove a range');
    is(counts($store, 4)->[16], 1, 'one entry of length 16 is left');
    counts_are_exact($store, 'after a remove');

    result_is(sd($store, qw(whitelist remove ::ffff:192.168.1.7)), 0,
              "removed 192.168.1.7 from the whitelist\n", '',
              'remove by the IPv4-mapped form');
    result_is(sd($store, qw(whitelist remove 2001:DB8::/32)), 0,
              "removed 2001:db8::/32 from the whitelist\n", '', 'remove IPv6');

    result_is(sd($store, qw(whitelist check 2001:db8::1)), 1,
              "2001:db8::1 is not whitelisted\n", '', 'the removed range is out');

    is(join(',', map { (split /\t/)[0] } split /\n/, list_of($store, 'whitelist')),
       '10.0.0.0/8,10.2.0.0/16', 'the rest is listed');

    sd($store, qw(whitelist remove), $_) for qw(10.0.0.0/8 10.2.0.0/16);
    is(list_of($store, 'whitelist'), '', 'an empty whitelist lists nothing');
    is_deeply(counts($store, 4), [ (0) x 33 ], 'all IPv4 counts are back to 0');
    is_deeply(counts($store, 6), [ (0) x 129 ], 'all IPv6 counts are back to 0');
};


subtest 'whitelist remove refuses what is not an entry' => sub {
    my $store = new_store();
    sd($store, qw(whitelist add 10.0.0.0/8));
    my $listed = list_of($store, 'whitelist');

    result_is(sd($store, qw(whitelist remove 10.9.9.9)), 2, '',
              "seadragon-store: 10.9.9.9 is not a whitelist entry (see \"whitelist list\")\n",
              'an address the range covers');
    result_is(sd($store, qw(whitelist remove 10.0.0.0/16)), 2, '',
              qr/10\.0\.0\.0\/16 is not a whitelist entry/, 'a narrower range');
    result_is(sd($store, qw(whitelist remove 11.0.0.0/8)), 2, '',
              qr/11\.0\.0\.0\/8 is not a whitelist entry/, 'another range');
    result_is(sd($store, qw(whitelist remove 10.0.0.1/8)), 2, '',
              qr/invalid ADDR\|CIDR "10\.0\.0\.1\/8": the address has host bits set/,
              'host bits set');
    result_is(sd($store, qw(whitelist remove nonsense)), 2, '',
              qr/whitelist remove: invalid ADDR\|CIDR "nonsense": not an IP address/,
              'not an address');

    is(list_of($store, 'whitelist'), $listed, 'the entry is still there');
    counts_are_exact($store, 'after refused removes');
};


subtest 'whitelist list sorts IPv4 before IPv6, by address, wider first' => sub {
    my $store = new_store();
    result_is(sd($store, qw(whitelist list)), 0, '', '', 'an empty whitelist');

    my @entries = ('2001:db8:1::/48', '192.168.0.0/16', '10.1.0.0/16',
                   '::1', '10.0.0.0/8', '2001:db8::/32', '9.9.9.9',
                   '10.0.0.0/16', '172.16.0.0/12');
    sd($store, qw(whitelist add), $_) for @entries;

    my $r = sd($store, qw(whitelist list));
    result_is($r, 0, qr/\A(?:[^\t\n]+\t$ISO\t\n){9}\z/, '',
              'one line per entry: CIDR, created, note');
    is_deeply([ map { (split /\t/)[0] } split /\n/, $r->{out} ],
              [ '9.9.9.9', '10.0.0.0/8', '10.0.0.0/16', '10.1.0.0/16',
                '172.16.0.0/12', '192.168.0.0/16', '::1', '2001:db8::/32',
                '2001:db8:1::/48' ], 'in order');
};


subtest 'whitelist check gives the module\'s verdict and names the narrowest entry' => sub {
    my $store = new_store();
    sd($store, qw(whitelist add), $_)
        for qw(10.0.0.0/8 10.1.0.0/16 10.1.2.3 2001:db8::/32 0.0.0.0/1);

    my @cases = (
        [ '10.1.2.3', 0, "10.1.2.3 is whitelisted (by 10.1.2.3)\n" ],
        [ '10.1.2.4', 0, "10.1.2.4 is whitelisted (by 10.1.0.0/16)\n" ],
        [ '10.200.0.1', 0, "10.200.0.1 is whitelisted (by 10.0.0.0/8)\n" ],
        [ '127.0.0.1', 0, "127.0.0.1 is whitelisted (by 0.0.0.0/1)\n" ],
        [ '::ffff:10.1.2.4', 0, "10.1.2.4 is whitelisted (by 10.1.0.0/16)\n" ],
        [ '2001:DB8:0:1::99', 0, "2001:db8:0:1::99 is whitelisted (by 2001:db8::/32)\n" ],
        [ '192.168.1.1', 1, "192.168.1.1 is not whitelisted\n" ],
        [ '2001:db9::1', 1, "2001:db9::1 is not whitelisted\n" ],
        [ '::1', 1, "::1 is not whitelisted\n" ],
    );

    for (@cases) {
        my ($addr, $status, $out) = @$_;
        result_is(sd($store, qw(whitelist check), $addr), $status, $out, '',
                  "check $addr");
    }

    my $empty = new_store();
    result_is(sd($empty, qw(whitelist check 10.0.0.1)), 1,
              "10.0.0.1 is not whitelisted\n", '', 'an empty whitelist');
};


subtest 'whitelist check refuses a range or what is not an address' => sub {
    my $store = new_store();
    for (['10.0.0.0/8', qr/whitelist check: "10\.0\.0\.0\/8" is a range; expected a single address such as 10\.0\.0\.1 or 2001:db8::1\n/ ],
         ['10.0.0.1/32', qr/"10\.0\.0\.1\/32" is a range; expected a single address/ ],
         ['host.example', qr/whitelist check: invalid ADDR "host\.example": not an IP address or CIDR range; expected a single address such as 10\.0\.0\.1/ ],
         ['', qr/invalid ADDR "": not an IP address/ ])
    {
        my ($addr, $err) = @$_;
        result_is(sd($store, qw(whitelist check), $addr), 2, '', $err,
                  "check \"$addr\"");
    }
};


subtest 'whitelist check follows the prefix counts, as the module does' => sub {
    my $store = new_store();
    sd($store, qw(whitelist add 10.0.0.0/8));

    # the counts say no entry has length 8: the module would not find it
    load_db($store, 'meta', prefixes4 => pack('V33', (0) x 33));
    result_is(sd($store, qw(whitelist check 10.0.0.1)), 1,
              "10.0.0.1 is not whitelisted\n", '', 'a lookup skips length 8');
    like(list_of($store, 'whitelist'), qr{^10\.0\.0\.0/8\t}, 'though the entry is there');

    # and a remove that finds them wrong changes nothing
    my $r = sd($store, qw(whitelist remove 10.0.0.0/8));
    result_is($r, 3, '',
              qr/^seadragon-store: cannot write the store "\Q$store\E": removing the entry: MDB_CORRUPTED: Located page was wrong type\n\z/,
              'remove with a count of 0');
    like(list_of($store, 'whitelist'), qr{^10\.0\.0\.0/8\t}, 'the entry was not removed');
    is_deeply(counts($store, 4), [ (0) x 33 ], 'the counts were not written');

    # counts of the wrong size are refused too
    load_db($store, 'meta', prefixes4 => pack('V32', (0) x 32));
    result_is(sd($store, qw(whitelist add 11.0.0.0/8)), 3, '',
              qr/adding the entry: MDB_CORRUPTED/, 'add with counts of the wrong size');
    unlike(list_of($store, 'whitelist'), qr{^11\.}m, 'the entry was not added');
    result_is(sd($store, qw(whitelist check 10.0.0.1)), 3, '',
              qr/looking the address up: MDB_CORRUPTED/, 'check with counts of the wrong size');
};


subtest 'the prefix counts stay exact through many adds and removes' => sub {
    my $store = new_store();
    my @nets = ((map { "10.$_.0.0/16" } 0 .. 9), (map { "10.0.$_.0/24" } 1 .. 9),
                (map { "172.16.0.$_" } 1 .. 9), '0.0.0.0/0', '128.0.0.0/1',
                (map { "2001:db8:$_\::/48" } 1 .. 9), (map { "fd00::$_" } 1 .. 9),
                '::/0', '8000::/1');

    for my $round (1 .. 2) {
        sd($store, qw(whitelist add), $_) for @nets;
        counts_are_exact($store, "round $round, all added");
        is(entries($store, 'whitelist'), scalar @nets, "round $round: all entries");
        is(counts($store, 4)->[16], 10, "round $round: ten of length 16");

        sd($store, qw(whitelist remove), $nets[$_]) for grep { $_ % 3 } 0 .. $#nets;
        counts_are_exact($store, "round $round, two in three removed");

        sd($store, qw(whitelist remove), $nets[$_]) for grep { !($_ % 3) } 0 .. $#nets;
        is_deeply(counts($store, 4), [ (0) x 33 ], "round $round: IPv4 counts are 0");
        is_deeply(counts($store, 6), [ (0) x 129 ], "round $round: IPv6 counts are 0");
    }
};


subtest 'a full map is a clear error that leaves the store as it was' => sub {
    my $store = new_store('--map-size', '64k');
    my ($r, $added);

    for my $i (0 .. 999) {
        $r = sd($store, qw(whitelist add), sprintf('10.%d.%d.0/24', $i >> 8, $i & 255));
        last if $r->{status};
        $added++;
    }

    result_is($r, 3, '',
              qr/^seadragon-store: cannot write the store "\Q$store\E": \S+: MDB_MAP_FULL: Environment mapsize limit reached; the store is full at its map size of 64k: grow it with "seadragon-store --store \Q$store\E init --map-size 128k" \(nginx may keep running\)\n\z/,
              "the add after $added entries");
    is(entries($store, 'whitelist'), $added, 'the failed add left no entry');
    counts_are_exact($store, 'after the failed add');

    # a key is two records in two databases: both or neither
    my $created = 0;
    for my $i (1 .. 500) {
        $r = sd($store, qw(key create), "late$i", qw(--source chat));
        last if $r->{status};
        $created++;
    }
    result_is($r, 3, '', qr/MDB_MAP_FULL.*init --map-size 128k/,
              "the key after $created keys");
    is(entries($store, 'key_names'), $created, 'the failed key left no name');
    is(entries($store, 'keys'), $created, 'and no record');

    result_is(sd($store, qw(init --map-size 128k)), 0,
              "$store is already initialized; its map size grew from 64k to 128k\n",
              '', 'the suggested init');
    result_is(sd($store, qw(whitelist add 11.0.0.0/8)), 0,
              "whitelisted 11.0.0.0/8\n", '', 'then the add fits');
    counts_are_exact($store, 'after growing');
};


subtest 'key create prints a new key alone on stdout and stores only its hash' => sub {
    my $store = new_store();
    my $before = time;
    my $r = sd($store, qw(key create alice@example.com --source interactive));
    my $after = time;

    result_is($r, 0, qr/\A$KEY\n\z/,
              qr/^seadragon-store: created the key "alice\@example.com" for the source "interactive", never expiring; it is printed above and will not be shown again\n\z/,
              'create');
    chomp(my $key = $r->{out});

    my $record = key_record($store, 'alice@example.com');
    is($record->{hash}, sha256($key), 'key_names holds the SHA-256 of the key');
    is($record->{size}, 144, 'the record is a seadragon_key_record_t');
    is($record->{version}, 3, 'version 3, with limits and a weight');
    is($record->{weight}, 1, 'weight 1, the default');
    is_deeply([ @$record{qw(rpm tokens_per_day max_concurrent)} ], [ 0, 0, 0 ],
              'no limits');
    is($record->{flags}, 0, 'no flags');
    ok($record->{created} >= $before && $record->{created} <= $after,
       'created now');
    is($record->{expires}, 0, 'never expires');
    is($record->{name}, 'alice@example.com', 'the name');
    is($record->{source}, 'interactive', 'the source');

    my $all = join '', map { @$_ } @{ dump_db($store, 'keys') },
                                   @{ dump_db($store, 'key_names') };
    is(index($all, $key), -1, 'the key itself is stored nowhere');
    is(index($all, substr($key, 3)), -1, 'nor its random part');

    my $other = sd($store, qw(key create bob --source interactive));
    isnt($other->{out}, $r->{out}, 'another key is another random string');
    is(entries($store, $_), 2, "two records in $_") for qw(keys key_names);
};


subtest 'key create takes --expires as a duration or a UTC time' => sub {
    my $store = new_store();
    my @cases = (['30d', 30 * 86400], ['12h', 12 * 3600], ['90m', 90 * 60],
                 ['3600s', 3600], ['1s', 1]);

    for (@cases) {
        my ($when, $seconds) = @$_;
        my $before = time;
        my $r = sd($store, qw(key create), "in-$when", qw(--source chat --expires), $when);
        my $after = time;
        result_is($r, 0, qr/\A$KEY\n\z/, qr/never be shown again|will not be shown again/,
                  "--expires $when");
        like($r->{err}, qr/, expiring $ISO;/, "--expires $when: says when");
        my $record = key_record($store, "in-$when");
        ok($record->{expires} >= $before + $seconds
           && $record->{expires} <= $after + $seconds,
           "--expires $when: $seconds seconds from now");
    }

    for (['2099-01-31', timegm(0, 0, 0, 31, 0, 2099)],
         ['2099-01-31T12:34:56Z', timegm(56, 34, 12, 31, 0, 2099)],
         ['2096-02-29', timegm(0, 0, 0, 29, 1, 2096)])
    {
        my ($when, $t) = @$_;
        (my $name = "until-$when") =~ tr/:/./;
        my $r = sd($store, qw(key create), $name, '--source', 'chat',
                   "--expires=$when");
        result_is($r, 0, qr/\A$KEY\n\z/, undef, "--expires $when");
        is(key_record($store, $name)->{expires}, $t, "--expires $when: stored");
    }
};


subtest 'key create refuses a bad name, source or expiry, and stores nothing' => sub {
    my $store = new_store();
    sd($store, qw(key create existing --source chat));
    my $listed = list_of($store, 'key');

    my @cases = (
        [ [ '', qw(--source chat) ], qr/invalid NAME "": expected 1 to 63 letters, digits, "_", "-", "." and "@"/ ],
        [ [ 'n' x 64, qw(--source chat) ], qr/invalid NAME "n{64}"/ ],
        [ [ 'two words', qw(--source chat) ], qr/invalid NAME "two words"/ ],
        [ [ 'a/b', qw(--source chat) ], qr/invalid NAME "a\/b"/ ],
        [ [ "caf\x{c3}\x{a9}", qw(--source chat) ], qr/invalid NAME/ ],
        [ [ 'ok' ], qr/key create: --source SOURCE is missing/ ],
        [ [ 'ok', '--source', '' ], qr/invalid SOURCE "": expected 1 to 31 letters, digits, "_" and "-" \(a seadragon_source name\)/ ],
        [ [ 'ok', '--source', 's' x 32 ], qr/invalid SOURCE "s{32}"/ ],
        [ [ 'ok', '--source', 'chat.bot' ], qr/invalid SOURCE "chat\.bot"/ ],
        [ [ 'ok', '--source', 'a@b' ], qr/invalid SOURCE "a\@b"/ ],
    );

    for my $when ('30', '30w', '-5d', 'd', '1.5h', '30 d', 'tomorrow', '2099-1-31',
                  '2099-02-30', '2099-13-01', '2099-01-31T24:00:00Z',
                  '2099-01-31T12:00:00', '2099-01-31 12:00:00Z', '2099-01-31T12:00Z',
                  '2099-01-31t12:00:00z', '9999999999d', '')
    {
        push @cases, [ [ qw(ok --source chat --expires), $when ],
                       qr/invalid --expires "\Q$when\E": expected a duration such as 30d, 12h, 90m or 3600s, or a date such as 2027-01-31 or 2027-01-31T12:00:00Z \(UTC\)/ ];
    }

    for my $when ('0d', '0s', '2020-01-01', '1970-01-01T00:00:00Z') {
        push @cases, [ [ qw(ok --source chat --expires), $when ],
                       qr/--expires "\Q$when\E" is not in the future \($ISO\); expected a later time/ ];
    }

    for (@cases) {
        my ($args, $err) = @$_;
        my $r = sd($store, qw(key create), @$args);
        result_is($r, 2, '', qr/^seadragon-store: key create: /, "create @$args");
        like($r->{err}, $err, "create @$args: says what is wrong and expected");
        like($r->{err}, qr/\nusage: seadragon-store \[--store PATH\] key create NAME --source SOURCE \[--expires WHEN\] \[--rpm N\] \[--tokens-per-day N\] \[--max-concurrent N\] \[--weight N\]\n\z/,
             "create @$args: shows the usage");
    }

    is(list_of($store, 'key'), $listed, 'no key was added');
    is(entries($store, $_), 1, "one record in $_") for qw(keys key_names);

    result_is(sd($store, qw(key create), 'n' x 63, qw(--source), 's' x 31), 0,
              qr/\A$KEY\n\z/, undef, 'a name of 63 and a source of 31 characters');
    result_is(sd($store, qw(key create --source A-b_9 -- -dash.name_1@x)), 0,
              qr/\A$KEY\n\z/, undef, 'a name that starts with "-", after "--"');
    like(list_of($store, 'key'), qr/^-dash\.name_1\@x\tA-b_9\tactive\t/m,
         'is listed');
};


subtest 'key create refuses a name that is taken, and keeps the old key' => sub {
    my $store = new_store();
    my $first = sd($store, qw(key create alice --source chat));
    my $hash = key_record($store, 'alice')->{hash};

    result_is(sd($store, qw(key create alice --source coding --expires 1d)), 2,
              '', "seadragon-store: a key named \"alice\" already exists; revoke it first or choose another name\n",
              'the same name again');

    my $record = key_record($store, 'alice');
    is($record->{hash}, $hash, 'the name still points at the first key');
    is($record->{source}, 'chat', 'with its source');
    is(entries($store, 'keys'), 1, 'no orphan record was left');
};


subtest 'key disable and enable flip the flag the module reads' => sub {
    my $store = new_store();
    sd($store, qw(key create alice --source chat));
    sd($store, qw(key create bob --source chat));

    result_is(sd($store, qw(key disable alice)), 0,
              "disabled the key \"alice\"\n", '', 'disable');
    is(key_record($store, 'alice')->{flags}, 1, 'SEADRAGON_KEY_DISABLED is set');
    is(key_record($store, 'bob')->{flags}, 0, 'the other key is untouched');
    like(list_of($store, 'key'), qr/^alice\tchat\tdisabled\t/m, 'listed as disabled');

    result_is(sd($store, qw(key disable alice)), 0,
              "the key \"alice\" is already disabled\n", '', 'disable again');
    is(key_record($store, 'alice')->{flags}, 1, 'still disabled');

    result_is(sd($store, qw(key enable alice)), 0,
              "enabled the key \"alice\"\n", '', 'enable');
    is(key_record($store, 'alice')->{flags}, 0, 'the flag is cleared');
    like(list_of($store, 'key'), qr/^alice\tchat\tactive\t/m, 'listed as active');

    result_is(sd($store, qw(key enable alice)), 0,
              "the key \"alice\" is already enabled\n", '', 'enable again');

    for my $verb (qw(disable enable revoke)) {
        result_is(sd($store, 'key', $verb, 'carol'), 2, '',
                  "seadragon-store: there is no key named \"carol\" (see \"key list\")\n",
                  "$verb an unknown name");
    }

    result_is(sd($store, qw(key disable ALICE)), 2, '', qr/no key named "ALICE"/,
              'names are case-sensitive');

    # found by t/fuzz/fuzz_store.c: an empty name was a store error (3)
    for my $verb (qw(disable enable revoke)) {
        result_is(sd($store, 'key', $verb, ''), 2, '',
                  "seadragon-store: there is no key named \"\" (see \"key list\")\n",
                  "$verb an empty name");
    }
};


subtest 'key revoke deletes the name and the record' => sub {
    my $store = new_store();
    my $alice = sd($store, qw(key create alice --source chat));
    sd($store, qw(key create bob --source chat));

    result_is(sd($store, qw(key revoke alice)), 0,
              "revoked the key \"alice\"\n", '', 'revoke');
    is(entries($store, $_), 1, "one record left in $_") for qw(keys key_names);
    chomp(my $key = $alice->{out});
    ok(!grep({ $_->[0] eq sha256($key) } @{ dump_db($store, 'keys') }),
       'the record under the key\'s hash is gone');
    unlike(list_of($store, 'key'), qr/^alice\t/m, 'not listed');

    result_is(sd($store, qw(key revoke alice)), 2, '',
              qr/there is no key named "alice"/, 'revoke again');

    result_is(sd($store, qw(key create alice --source coding)), 0,
              qr/\A$KEY\n\z/, undef, 'the name can be used again');
};


subtest 'key list shows name, source, state, created, expiry and limits, never a key' => sub {
    my $store = new_store();
    result_is(sd($store, qw(key list)), 0, '', '', 'no keys, no header row');

    my %keys;
    for (['zed', 'chat', []], ['alice', 'coding', [qw(--expires 2099-01-31)]],
         ['Bob', 'batch', [qw(--expires 30d)]], ['carol', 'chat', []])
    {
        my ($name, $source, $more) = @$_;
        my $r = sd($store, qw(key create), $name, '--source', $source, @$more);
        chomp($keys{$name} = $r->{out});
    }
    sd($store, qw(key disable carol));

    # an expired key, and a disabled one that has expired too
    for my $name (qw(zed carol)) {
        my $record = key_record($store, $name);
        load_db($store, 'keys', $record->{hash} => pack('V V q< q< a64 a32',
                1, $record->{flags}, $record->{created}, time - 60,
                $name, $record->{source}));
    }

    my $r = sd($store, qw(key list));
    result_is($r, 0, qr/\Aname\tsource\tstate\tcreated\texpires\trpm\ttokens_per_day\tmax_concurrent\tweight\n(?:[^\t\n]+\t[^\t\n]+\t(?:active|disabled|expired)\t$ISO\t(?:$ISO|never)\t-\t-\t-\t1\n){4}\z/,
              '', 'a header row, then one line per key, eight columns (no limits: "-")');

    my (undef, @lines) = map { [ split /\t/ ] } split /\n/, $r->{out};
    is_deeply([ map { $_->[0] } @lines ], [qw(Bob alice carol zed)],
              'sorted by name, byte by byte');
    is_deeply([ map { "$_->[1] $_->[2]" } @lines ],
              [ 'batch active', 'coding active', 'chat disabled', 'chat expired' ],
              'the source and state of each; disabled wins over expired, as in the module');
    is($lines[1][4], '2099-01-31T00:00:00Z', 'the expiry in ISO 8601 UTC');
    my $in30d = iso_time($lines[0][4]) - iso_time($lines[0][3]);
    ok(abs($in30d - 30 * 86400) <= 2, '30d is 30 days after creation');

    for my $name (keys %keys) {
        is(index($r->{out}, $keys{$name}), -1, "$name: the key is not shown");
        my $hash = key_record($store, $name)->{hash};
        is(index(lc $r->{out}, unpack('H*', $hash)), -1,
           "$name: nor its hash in hex");
        is(index($r->{out}, $hash), -1, "$name: nor its hash");
    }

    result_is(sd($store, qw(key enable carol)), 0, "enabled the key \"carol\"\n",
              qr/^seadragon-store: the key "carol" is still refused: it expired at $ISO\n\z/,
              'enabling an expired key says it is still refused');
};


subtest 'a store that cannot be written is status 3 with the path and LMDB\'s words' => sub {
    plan skip_all => 'root may write anything' if $> == 0;

    my $store = new_store();
    chmod 0444, "$store/data.mdb" or die $!;
    result_is(sd($store, qw(whitelist add 10.0.0.1)), 3, '',
              qr/cannot open the store "\Q$store\E": mdb_env_open\(\): Permission denied/,
              'a read-only data file');
    chmod 0644, "$store/data.mdb";
};


done_testing();
