package Test::Seadragon::TLS;

use strict;
use warnings;

=head1 NAME

Test::Seadragon::TLS - conf/seadragon-tls.conf on test ports, a throwaway
CA, and curl with the example's host names

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::Seadragon;
    use Test::Seadragon::TLS;

    add_block_preprocessor(sub {
        my $block = shift;
        tls_certificates();                 # once per file, in SERVROOT/tls
        $block->set_value(http_config => tls_example_conf());
    });

    my $r = curl('POST', 'https://api.example.com/api/chat',
                 body => '{"model":"llama3:70b","messages":[]}',
                 headers => { Origin => 'https://chat.example.com' },
                 http => '2');
    # $r->{status}, $r->{http_version} ("2", "1.1"), $r->{headers}{name},
    # $r->{body}, $r->{error}

=head1 DESCRIPTION

C<tls_example_conf()> is F<conf/seadragon-tls.conf> with only what ties it
to a real machine moved to the test's own: its C<listen 443> lines listen
on 127.0.0.1:C<$TEST_NGINX_TLS_PORT>, C<listen 80> on
127.0.0.1:C<$TEST_NGINX_PLAIN_PORT>, Ollama is the stand-in, every
certificate is the throwaway one, the store is C<$TEST_NGINX_STORE>, logs go
to the server root's F<logs/>, ACME challenges are read from F<html/acme/>,
the admin and chat pages from the repository.
Each rewrite dies when the example no longer has what it rewrites.

C<tls_certificates()> makes, once per file, a CA and a certificate it signs
for C<api.example.com>, C<admin.example.com> and C<chat.example.com> with
openssl, in F<SERVROOT/tls/> (C<ca.pem>, C<server.pem>, C<server.key>); it
returns the paths and sets C<$ENV{TEST_NGINX_TLS_DIR}>.

C<curl($method, $url, %options)> runs curl against the test ports: a URL on
https://NAME/ or http://NAME/ goes to the TLS or the plain port, and the
three names resolve to 127.0.0.1 (C<--resolve>), so the request carries the
name in SNI and in Host as a browser's would.  It trusts only the
throwaway CA.  Options: C<headers> (a hash or a list of pairs), C<body>,
C<http> (C<'2'> for C<--http2>, C<'1.1'>, default curl's own choice),
C<timeout> (seconds, default 10), C<ca> (another CA file; an empty string
for curl's own trust store), C<args> (more curl arguments).  It returns
C<status>, C<http_version>, C<headers> (lower-case names, repeated ones
joined with ", "), C<body> and C<error> (curl's message when it failed).

C<example_hosts()> lists the three names.

C<tls_setup()> is what the TLS suites share: the file's store
(C<store_init>) with 127.0.0.1 whitelisted (the example's C<api> source
needs it); C<$::config>, the harness's own server, a C<location /api/>
queued on the example's zone C<ollama> and proxied unbuffered to its
upstream; and a block preprocessor that makes the certificates and gives a
block without its own C<http_config> and C<config> the example and
C<$::config>.  Call it before C<run_tests>.

C<tls_hold()> holds the gate with an untagged, unstreamed chat sent to the
harness's own server (C<hold_gate>): it returns the request's handle once
the stand-in runs it; C<standin_release()> lets it finish.

=cut

use Cwd ();
use POSIX ();
use File::Basename ();
use File::Path ();
use Test::Seadragon ();

use Exporter 'import';
our @EXPORT = qw(tls_example_conf tls_certificates curl example_hosts
                 tls_setup tls_hold);

my @Hosts = qw(api.example.com admin.example.com chat.example.com);
my $Repo = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../../../..');
my %Certs;

sub example_hosts { @Hosts }

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or die "cannot read $path: $!\n";
    local $/;
    return scalar <$fh>;
}

sub tls_example_conf {
    my $c = slurp("$Repo/conf/seadragon-tls.conf");
    my $sub = sub {
        my ($re, $to, $what) = @_;
        $c =~ s/$re/$to/g or die "conf/seadragon-tls.conf has no $what\n";
    };
    $sub->(qr/listen\s+443\s+ssl\s+http2;/,
           'listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl http2;', 'listen 443 ssl http2');
    $sub->(qr/listen\s+80;/, 'listen 127.0.0.1:$TEST_NGINX_PLAIN_PORT;', 'listen 80');
    $sub->(qr/127\.0\.0\.1:11434/, '127.0.0.1:$TEST_NGINX_OLLAMA_PORT', 'Ollama address');
    $sub->(qr{/etc/letsencrypt/live/[^/]+/fullchain\.pem},
           '$TEST_NGINX_TLS_DIR/server.pem', 'ssl_certificate');
    $sub->(qr{/etc/letsencrypt/live/[^/]+/privkey\.pem},
           '$TEST_NGINX_TLS_DIR/server.key', 'ssl_certificate_key');
    $sub->(qr{/var/lib/seadragon/store}, '$TEST_NGINX_STORE', 'store');
    $sub->(qr{/var/log/nginx/}, '$TEST_NGINX_SERVROOT/logs/', 'log path');
    $sub->(qr{/usr/share/seadragon/html/}, '$TEST_NGINX_REPO/conf/html/', 'admin page');
    $sub->(qr{/var/www/letsencrypt}, '$TEST_NGINX_SERVROOT/html/acme', 'ACME root');
    return $c;
}

sub run_quiet {
    my ($what, @cmd) = @_;
    my $out = Test::Seadragon::servroot() . "/tls/openssl.out";
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    die "$what failed ($?): @cmd\n" . (eval { slurp($out) } // '') if $?;
}

sub tls_certificates {
    return {%Certs} if %Certs;
    my $dir = Test::Seadragon::servroot() . "/tls";
    File::Path::remove_tree($dir);
    File::Path::make_path($dir);

    my $ext = "$dir/server.ext";
    open my $fh, '>', $ext or die "cannot write $ext: $!\n";
    print $fh "subjectAltName = " . join(',', map { "DNS:$_" } @Hosts) . "\n",
              "basicConstraints = critical, CA:FALSE\n",
              "keyUsage = critical, digitalSignature\n",
              "extendedKeyUsage = serverAuth\n";
    close $fh;

    my @key = qw(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes);
    run_quiet('the test CA', 'openssl', 'req', '-x509', @key,
              '-keyout', "$dir/ca.key", '-out', "$dir/ca.pem", '-days', '2',
              '-subj', '/CN=Seadragon throwaway test CA',
              '-addext', 'basicConstraints=critical,CA:TRUE',
              '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    run_quiet('the server key', 'openssl', 'req', @key,
              '-keyout', "$dir/server.key", '-out', "$dir/server.csr",
              '-subj', '/CN=api.example.com');
    run_quiet('the server certificate', 'openssl', 'x509', '-req',
              '-in', "$dir/server.csr", '-CA', "$dir/ca.pem", '-CAkey', "$dir/ca.key",
              '-CAcreateserial', '-days', '2', '-extfile', $ext,
              '-out', "$dir/server.pem");

    $ENV{TEST_NGINX_TLS_DIR} = $dir;
    %Certs = (dir => $dir, ca => "$dir/ca.pem", cert => "$dir/server.pem",
              key => "$dir/server.key");
    return {%Certs};
}

my $CurlSeq = 0;

sub curl {
    my ($method, $url, %a) = @_;
    my $certs = tls_certificates();
    my $tls = $ENV{TEST_NGINX_TLS_PORT} or die "curl: \$TEST_NGINX_TLS_PORT is not set\n";
    my $plain = $ENV{TEST_NGINX_PLAIN_PORT};

    my ($scheme, $host, $path) = $url =~ m{^(https?)://([^/:]+)(/.*)?$}
        or die "curl: expected http(s)://NAME/PATH, got $url\n";
    my $port = $scheme eq 'https' ? $tls
             : ($plain // die "curl: \$TEST_NGINX_PLAIN_PORT is not set\n");
    my $target = "$scheme://$host:$port" . ($path // '/');

    my $dir = Test::Seadragon::servroot() . "/clients";
    File::Path::make_path($dir);
    my $base = "$dir/curl." . $$ . "." . ++$CurlSeq;

    my $ca = exists $a{ca} ? $a{ca} : $certs->{ca};
    my @cmd = ('curl', '-sS', '--max-time', $a{timeout} // 10,
               (length($ca // '') ? ('--cacert', $ca) : ()),
               '-D', "$base.head", '-o', "$base.body",
               '-w', '%{http_code} %{http_version}', '-X', $method);
    push @cmd, map { ('--resolve', "$_:$port:127.0.0.1") } @Hosts;
    push @cmd, '--http2' if ($a{http} // '') eq '2';
    push @cmd, '--http1.1' if ($a{http} // '') eq '1.1';
    my $h = $a{headers} || {};
    my @pairs = ref $h eq 'HASH' ? map { [$_, $h->{$_}] } sort keys %$h
              : do { my @l = @$h; my @p; push @p, [splice @l, 0, 2] while @l; @p };
    push @cmd, map { ('-H', "$_->[0]: $_->[1]") } @pairs;
    if (defined $a{body}) {
        open my $fh, '>', "$base.req" or die "cannot write $base.req: $!\n";
        print $fh $a{body};
        close $fh;
        push @cmd, '--data-binary', "\@$base.req";
    }
    push @cmd, @{ $a{args} || [] }, $target;

    my $pid = open(my $out, '-|') // die "fork: $!\n";
    if (!$pid) {
        open STDERR, '>', "$base.err";
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    my $w = do { local $/; <$out> } // '';
    close $out;
    my $exit = $? >> 8;

    my %res = (status => undef, http_version => undef, headers => {}, body => '',
               error => undef);
    my ($code, $version) = split ' ', $w;
    $res{status} = $code + 0 if $code && $code ne '000';
    $res{http_version} = $version;
    $res{body} = eval { slurp("$base.body") } // '';
    my $head = eval { slurp("$base.head") } // '';
    my @blocks = grep { /\S/ } split /\r?\n\r?\n/, $head;
    for my $line (split /\r?\n/, $blocks[-1] // '') {
        my ($n, $v) = $line =~ /^([^:\s]+):\s*(.*?)\s*$/ or next;
        my $k = lc $n;
        $res{headers}{$k} = defined $res{headers}{$k} ? "$res{headers}{$k}, $v" : $v;
    }
    if ($exit) {
        my $err = eval { slurp("$base.err") } // '';
        $err =~ s/\s+\z//;
        $res{error} = "curl exited $exit: $err";
    }
    unlink map { "$base.$_" } qw(head body req err);
    return \%res;
}

# The TLS suites' set-up: the store, the harness's own server, the
# preprocessor.
sub tls_setup {
    Test::Seadragon::store_init();
    Test::Seadragon::store_tool('whitelist add 127.0.0.1');
    $::config = <<'_EOC_';
    location /api/ {
        seadragon_queue  ollama;
        proxy_pass       http://ollama;
        proxy_set_header Host localhost;
        proxy_buffering  off;
    }
_EOC_
    Test::Seadragon::add_block_preprocessor(sub {
        my $block = shift;
        tls_certificates();
        $block->set_value(http_config => tls_example_conf())
            unless defined $block->http_config;
        $block->set_value(config => $::config) unless defined $block->config;
    });
    return;
}

sub tls_hold {
    return Test::Seadragon::hold_gate(sub {
        Test::Seadragon::start_request('POST /api/chat',
            headers => { 'X-Standin-Hold' => 1 },
            body => '{"model":"llama3:70b","messages":[],"stream":false}');
    });
}

1;
