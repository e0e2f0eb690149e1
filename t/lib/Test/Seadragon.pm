# Client code of the "--- client" sections is compiled here, before any of
# the module's lexicals exist, so that it sees none of them.
package Test::Seadragon::Eval;

sub run {
    no strict;
    return scalar eval $_[0];
}

package Test::Seadragon;

use strict;
use warnings;

our $VERSION = '0.1';

=head1 NAME

Test::Seadragon - Test::Nginx-style blocks for Seadragon, without Test::Nginx

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::Seadragon;

    workers(2); master_on();          # optional, for the whole file
    repeat_each(1);
    run_tests();

    __DATA__

    === TEST 1: a name that states the behaviour
    --- http_config
        seadragon_zone ollama:1m;
    --- config
        location /api/ {
            seadragon_queue ollama;
            proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        }
    --- request
    POST /api/chat
    {"model":"llama3:70b","messages":[]}
    --- more_headers
    X-Standin-Tokens: 3
    --- error_code: 200
    --- response_body_like: "done":true
    --- no_error_log
    [error]

Run with C<prove -I t/lib t/> from the repository.  Blocks are parsed by
Test::Base, so its filters work (C<--- response_body chomp>,
C<--- config eval>, C<--- error_log eval>, ...), and C<ONLY>, C<SKIP> and
C<LAST> act as in Test::Nginx.  Blocks run in file order (no shuffling).

Each block gets a fresh nginx: F<conf/>, F<logs/>, F<html/>, F<tmp/> of the
server root are recreated, F<conf/nginx.conf> is written, nginx is started,
the request and the client code run, the checks follow, and nginx is
stopped (SIGQUIT; SIGTERM after 5 s; then SIGKILL).  Every check is its own
assertion named C<"TEST N: name - what">; the file ends with
C<done_testing>.

=head1 SECTIONS

=head2 Configuration

=over

=item main_config

Top level of F<nginx.conf>.  When it sets C<worker_processes>,
C<master_process> or C<user>, the harness leaves out its own line.

=item http_config

Inside C<http {}>, before the test server.

=item config

Inside the test C<server {}>, which listens on
C<127.0.0.1:$TEST_NGINX_SERVER_PORT>.

=item workers, master_on, master_off, log_level

Per-block versions of the functions below (C<--- workers: 2>,
C<--- master_on>, C<--- log_level: info>).

=item no_standin

C<$TEST_NGINX_OLLAMA_PORT> is a port where nothing listens, for this block.

=item user_files

Files written under F<html/> before nginx starts: C<E<gt>E<gt>E<gt> name>
lines, each followed by the file's content; or with C<eval>,
C<[[name =E<gt> content], ...]>.

=back

Directives the harness writes itself (C<default_type>, C<keepalive_timeout>,
the C<*_temp_path>s, C<client_max_body_size>) are left out, or moved to
C<http>, when a section sets them, so that no block fails on "directive is
duplicate".

The generated file looks like this (C<user root;> only when run as root):

    load_module /abs/path/ngx_seadragon_module.so;
    daemon off;
    master_process off;
    worker_processes 1;
    error_log logs/error.log debug;
    pid logs/nginx.pid;
    user root;
    <main_config>
    events { accept_mutex off; worker_connections 1024; }
    http {
        access_log logs/access.log;
        default_type text/plain;
        keepalive_timeout 68;
        client_body_temp_path tmp/client_body; (and proxy_, fastcgi_, uwsgi_, scgi_)
        <http_config>
        server {
            listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;
            server_name localhost;
            client_max_body_size 30M;
            <config>
        }
    }

=head2 The request

=over

=item request

First line C<METHOD URI [HTTP/1.x]>; the rest is the body, sent with
C<Content-Length>.  As in Test::Nginx, leading and trailing white space of
the body is removed and an empty body sends no C<Content-Length>: use
C<raw_request> (or C<request()> in a client section) for exact bytes.
C<Host: localhost> and C<Connection: close> are added unless
C<more_headers> sets them.  C<--- request eval> may return the same text.

=item raw_request

Bytes sent as they are (usually with C<eval>).

=item more_headers

C<Name: value> lines added to the request (lines starting with C<#> are
ignored).

=item timeout

Seconds the client waits for the whole response (default 10; C<500ms> is
accepted).  Also the default timeout of C<request()> and
C<start_request()> in the block's client code.

=item abort

The client may give up at the timeout (it closes the connection) or see a
cut response: that is not a failure.  Without C<abort>, a timeout, a
refused connection or a truncated response fails "response received".

=back

=head2 Checks

=over

=item error_code

The status; 200 when the section is absent.  With C<abort> and no status
received, the status is not checked unless the section is given.

=item response_headers

C<Name: value> lines, values compared exactly; C<!Name> means the header
is absent.  Repeated headers are joined with C<", ">.

=item response_headers_like

C<Name: regex> lines.

=item response_body

The decoded body, compared exactly (the section keeps its final newline:
use C<--- response_body chomp> or the one-line form C<--- response_body: ok>).
With C<eval> it may be a C<qr//>.

=item response_body_like

A regex, matched with C</s>.

=item error_log, no_error_log

One pattern a line, a plain substring, looked for in F<logs/error.log>;
with C<eval>, a C<qr//>, a string or an array of them, each matched
against single lines.  C<error_log> waits up to 1 s for its lines.

=item wait

Seconds to sleep after the request and client code, before the logs are
checked.

=item must_die

The configuration must be refused: C<nginx -t> runs instead of nginx and
must exit non-zero; C<error_log> and C<no_error_log> are matched against
its output (stderr and F<logs/error.log>).

=item client

Perl code run after nginx has started (and after the request, if the block
has one), compiled with C<no strict> in the package that called
C<run_tests()> (normally C<main>, which has every helper below imported
and the test file's own subs).  If it dies, the block fails with the
message.

=item client_output, client_output_like

The client code's return value, compared exactly after removing trailing
newlines from both sides, or matched by the regex (C</s>, trailing newlines
of the pattern removed).  A client section with neither check passes when
the code does not die.

=item skip_nginx, skip_eval

C<--- skip_nginx: [N:] E<lt> 1.21.0> skips the block when nginx's version
compares so; C<--- skip_eval: [N:] EXPR> skips it when the Perl expression is
true (the count N is accepted and ignored).

=back

A block also fails when nginx does not start within 5 s (30 s under
valgrind), when nginx is gone before the end of the block, when a worker
died of SIGSEGV, SIGABRT, SIGBUS, SIGFPE or SIGILL ("exited on signal" in
the error log), when nginx does not stop within 5 s of SIGQUIT, and (under
valgrind) when valgrind reported anything.

No process outlives its block or the file: request children are killed,
nginx is stopped and then killed, the workers of a master that died are
found (the harness makes itself their subreaper) and killed, and the
stand-in is ended when the file ends, also on die, SIGINT and SIGTERM.

=head2 Differences from Test::Nginx

Client code runs in the test file's package, not in a package of its own.
Blocks are never shuffled.  A C<request> is one request (no arrays,
C<pipelined_requests> or C<raw_request_middle_delay>: use client code).
Each block starts its own nginx (no C<TEST_NGINX_NO_CLEAN> or
C<TEST_NGINX_USE_HUP>).  C<must_die> runs C<nginx -t>.

=head1 VARIABLES

C<$TEST_NGINX_NAME> is replaced by C<$ENV{TEST_NGINX_NAME}> in C<main_config>,
C<http_config>, C<config>, C<request>, C<raw_request>, C<more_headers> and
C<client> (a variable that is not set fails the block).  The harness sets:

    TEST_NGINX_SERVER_PORT   the test server's port (one per file)
    TEST_NGINX_OLLAMA_PORT   the stand-in Ollama's port
    TEST_NGINX_SERVROOT      the server root of this file
    TEST_NGINX_REPO          the repository
    TEST_NGINX_<ANY>_PORT    any other such name a block uses gets a free
                             port of its own, kept for the whole file (a
                             second server, or a port where nothing listens)

=head1 FUNCTIONS

=head2 Settings (call before run_tests)

    repeat_each(N)            run each block N times (default 1)
    workers(N)                worker_processes N (default 1); N > 1 turns the
                              master process on unless master_off() was called
    master_on(), master_off() master_process on|off (default off)
    log_level('info')         level of logs/error.log (default debug)
    worker_connections(N)     default 1024
    use_standin()             start the stand-in Ollama even if no block
                              mentions $TEST_NGINX_OLLAMA_PORT
    no_standin()              $TEST_NGINX_OLLAMA_PORT is a dead port
    standin_options('--tokens 4 --delay-ms 10')   its command-line options
    add_block_preprocessor(sub { my $block = shift; ... })
    no_shuffle(), no_long_string(), no_diff()     accepted, do nothing
    run_tests()

=head2 nginx

    servroot(), html_dir(), server_port()
    nginx_master_pid()        pid of the nginx started for this block
    nginx_worker_pids()       its children (none with master_process off)
    nginx_reload(%sections)   optionally rewrite main_config, http_config or
                              config, then SIGHUP; returns once new workers run
                              and the old ones are gone or shutting down
    error_log_text()          logs/error.log so far
    access_log_text($file)    logs/$file, default access.log, once it has
                              stayed unchanged for 100 ms

=head2 HTTP client

    my $r = request('POST /api/chat', body => $json,
                    headers => { 'X-Standin-Tag' => 'a' },  # or [ name => value, ... ]
                    timeout => 10, port => $port, host => '127.0.0.1');

It sends HTTP/1.1 with C<Host: localhost> and C<Connection: close> unless
the headers set them, and C<Content-Length> when there is a body (also
C<"">); a body may also follow the request line after a newline.
C<raw =E<gt> $bytes> sends bytes instead.  It returns:

    status        the status code (undef when no status line arrived)
    status_line   "HTTP/1.1 200 OK"
    headers       { lower-case name => value }, repeated ones joined by ", "
    header_list   [[Name, value], ...] as received
    body          the body, chunked encoding decoded (bytes)
    chunks        [[time, data], ...]: each chunk of a chunked body, or what
                  each read returned otherwise, with the time it arrived
    first_byte    when the first byte of the response arrived
    end           when the response was complete (or given up)
    error         undef, or why the response is missing or incomplete
                  ("timeout after 10s", "cannot connect: ...", "connection
                  closed before the response was complete", ...); what
                  arrived before is kept
    timed_out     1 after a timeout
    aborted       1 for a request ended by abort_request

Times are C<Time::HiRes::time>, the clock of the stand-in's C<time.time()>.

    my $h  = start_request(same arguments);   # runs in a child process
    my $r  = wait_request($h);                # its result
    my @rs = wait_all(@handles);
    my $r  = abort_request($h);   # the child closes its connection at once
                                  # (SIGTERM) and its result keeps what had
                                  # arrived, with aborted => 1

Every child still running at the end of the block, whatever way the block
ended, is killed and reaped.

=head2 The stand-in Ollama

F<scripts/ollama-standin.py> (or C<$ENV{TEST_NGINX_STANDIN}>) is started
once per file, on the first block that mentions C<TEST_NGINX_OLLAMA_PORT>
(or at the first block after C<use_standin()>), with C<--port 0> and the
C<standin_options>; its output goes to F<SERVROOT/standin.log>.  Before
every block it gets C<POST /_standin/reset>.

    standin_requests()   arrayref of the records of GET /_standin/requests
    standin_stats()      hashref of GET /_standin/stats
    standin_reset()
    standin_release()    POST /_standin/release (answers X-Standin-Hold requests)
    queued_count()       how many requests the zone has taken in (counts the
                         module's "seadragon queued #N" debug lines)
    standin_script()     the script's path

Each of the four C<standin_*> calls above also takes a port, for a stand-in
started with C<standin_start_another>: C<standin_requests($port)>.  A test of
several Ollama servers starts the others itself:

    my $port = standin_start_another('--tokens 4');   # its own options; returns
                                         # its port (log: SERVROOT/standin-N.log)
    standin_stop_another($port)          # end it (a dead server from now on)

They run until they are stopped or the file ends; the harness does not
reset them before a block.

=head2 npm packages

    my $dir = node_modules();   # build/node/node_modules

F<t/package.json> pins the npm packages the suites use.  C<node_modules()>
installs them into F<build/node> (ignored by git) when one is missing or
at another version, under a lock, as suites run in parallel; later runs
find them there and install nothing.  It dies with npm's output when the
install fails.  Node finds them with C<NODE_PATH> set to the returned
folder, or from a script written under F<build/node>.

=head2 Other helpers

    wait_until(sub { ... }, 'what', $timeout)   poll every 20 ms; die with
        "timed out waiting for what" after $timeout s (default 10)
    json_encode($data), json_decode($bytes)     JSON::PP, canonical, UTF-8
    example_conf()      conf/seadragon.conf with its addresses and paths
        moved to the test's own: $TEST_NGINX_OLLAMA_PORT for Ollama,
        $TEST_NGINX_EXAMPLE_PORT for its listen, $TEST_NGINX_STORE for the
        store, the servroot's logs, the repository's admin page

=head2 The store and its tool

    store_init();                       # the file's store, created
    sub tool { store_tool(@_) }         # as the suites call it
    my $key = store_tool('key create alice --source coding');

C<store_init()> makes a temporary directory that lasts until the test file
ends, sets C<$ENV{TEST_NGINX_STORE}> to F<store> in it (what a
configuration names as C<seadragon_store $TEST_NGINX_STORE;>) and runs
C<seadragon-store init> there; it returns the directory (a
C<File::Temp::Dir>, which stringifies to its path).  C<store_tool(ARGS)>
runs F<build/seadragon-store> on that store with ARGS, one string that the
shell splits as the suites write them (C<'whitelist add 127.0.0.1'>), and
returns what it printed, without the last newline; when the tool fails it
dies with what the tool wrote to stderr.  C<store_tool_path()> is the
tool's path, for a file that skips when it is not built:

    plan skip_all => "build/seadragon-store is not built: run make"
        unless -x store_tool_path();

=head2 A chat request of a source

    sub chat {
        my ($tag, %headers) = @_;
        return start_chat($tag, '{"model":"llama3:70b","messages":[]}',
                          'X-Standin-Tokens' => 1, %headers);
    }

C<start_chat(TAG, BODY, HEADERS)> starts (C<start_request>) a
C<POST /api/chat> with BODY, tagged C<X-Standin-Tag: TAG> for the
stand-in's record and sending C<X-SOURCE: 1>, where SOURCE is the
lower-case letters TAG begins with (C<coding-3> sends C<X-coding: 1>),
the header a suite's C<if=$http_x_coding> picks its source by; then
HEADERS (name, value, ...), which may replace those two.  It returns the
request's handle, for C<wait_request>.

Most suites send one kind of chat, so the harness has it:

    chat_defaults(body => '{"model":"llama3:70b","messages":[],"stream":false}',
                  'X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0);
    my $h = chat('coding3', 'X-Standin-Tokens' => 4);

C<chat(TAG, HEADERS)> is C<start_chat> with the file's body and headers
(set once by C<chat_defaults>; by default the body
C<{"model":"llama3:70b","messages":[]}> and C<X-Standin-Tokens: 1>), then
HEADERS.  Two names among HEADERS or the defaults are not headers:
C<port =E<gt> P> sends the request to port P (a code reference in the
defaults is called for each request, for a port the harness picks later:
C<port =E<gt> sub { $ENV{TEST_NGINX_SPREAD_PORT} }>), and C<key =E<gt> K>
sends C<Authorization: Bearer K>.  The handle has the tag in C<{tag}>.
A suite that needs another request names its own helper otherwise
(C<chat_to>, C<chat_now>).

=head2 Holding the gate

    my $hold = hold_gate();                  # chat('hold', 'X-Standin-Hold' => 1)
    my $hold = hold_gate('coding0', port => $spread);
    my $hold = hold_gate(sub { chat('hold', 'X-Standin-Tokens' => 10,
                                   'X-Standin-Delay-Ms' => 50) });
    ... queue others behind it ...
    standin_release();
    my @r = wait_all($hold, @others);        # or: my $r = release_gate($hold);

C<hold_gate(TAG, HEADERS)> starts C<chat(TAG, 'X-Standin-Hold' =E<gt> 1,
HEADERS)> (TAG C<hold> when the arguments are pairs) and returns its handle
once the stand-in runs it (its C<active> count is 1), so that with
C<capacity=1> the next request queues.  Given a code reference it starts
that request instead (a slow generation, or a suite's own request with
C<X-Standin-Hold>) and waits the same way.  The handle is a
C<start_request> handle; C<release_gate($hold)> is C<standin_release()>
and C<wait_request($hold)>.  C<served_tags()> is the tags of what reached
the stand-in, in order, joined by commas.

=head2 What a block reads back

    said($r)              "200 {...}": the status and the body on one line
    admin_queue()         GET /api/admin/queue of the test server, decoded
    admin_stats()         the "sources" of GET /api/admin/stats
    admin_stats('api')    the counters of one source

(for a configuration with C<seadragon_admin> at C</api/admin/> of the test
server).

=head2 The gate suites' set-up

    gate_setup();

What t/004 and t/008 share: C<$::http_config> (zone C<ollama> of
C<capacity=$TEST_NGINX_CAPACITY>, 1 unless the file set it; sources
C<coding> if C<$http_x_coding>, C<chat> if C<$http_x_chat>, C<api>; the
log format C<gate>), C<$::config> (C<logs/gate.log>, C</api/> queued on
C<ollama> and proxied unbuffered to the stand-in), a block preprocessor
that gives them to blocks without their own, and C<chat_defaults> of a
"hi" for one token at once.

=head1 ENVIRONMENT

    TEST_NGINX_BINARY        nginx to run (default /usr/sbin/nginx)
    TEST_NGINX_LOAD_MODULES  space-separated .so files to load_module
                             (default build/ngx_seadragon_module.so when it
                             exists; an empty string loads none)
    TEST_NGINX_SERVROOT      server roots go under it (default t/servroot);
                             the test file's name is appended
    TEST_NGINX_SERVER_PORT   the test server's port (default: a free one)
    TEST_NGINX_USE_VALGRIND  run nginx under valgrind memcheck; any report
                             fails the block.  nginx's own leaks at exit are
                             suppressed by the harness; t/valgrind.suppress
                             is added when it exists
    TEST_NGINX_STANDIN       another stand-in script (for debugging)

=cut

use Cwd ();
use Errno ();
use Fcntl ();
use File::Basename ();
use File::Path ();
use File::Spec ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use POSIX ();
use Text::ParseWords ();
use Time::HiRes ();
use Test::More;
use Test::Base ();
use Test::Base::Filter ();

use Exporter 'import';

our @EXPORT = (
    # Test::More, so that test files need nothing else
    qw(ok is isnt like unlike is_deeply cmp_ok pass fail diag note explain
       plan done_testing skip BAIL_OUT subtest),

    # settings
    qw(run_tests repeat_each workers master_on master_off log_level
       worker_connections no_shuffle no_long_string no_diff
       add_block_preprocessor blocks
       use_standin no_standin standin_options),

    # nginx
    qw(servroot server_root html_dir server_port nginx_master_pid
       nginx_worker_pids nginx_reload error_log_text access_log_text),

    # client code
    qw(request start_request wait_request wait_all abort_request
       standin_requests standin_stats standin_reset standin_release standin_script
       standin_start_another standin_stop_another node_modules
       queued_count example_conf
       wait_until json_encode json_decode),

    # the store, a chat request
    qw(store_init store_tool store_tool_path start_chat chat chat_defaults
       hold_gate release_gate served_tags gate_setup said admin_queue
       admin_stats),
);


# Settings of the test file.

my $RepeatEach        = 1;
my $Workers           = 1;
my $MasterProcess;                  # undef: on when workers > 1
my $LogLevel          = 'debug';
my $WorkerConnections = 1024;
my $UseStandin        = 0;
my $NoStandin         = 0;
my $StandinOptions    = '';
my @BlockPreprocessors;

my $DefaultTimeout    = 10;
my $StopTimeout       = 5;
my $ErrorLogWait      = 1;


# State of the test file and of the running block.

my $MainPid = $$;
my ($Repo, $ServRoot, $NginxBinary, $Valgrind, $Spec, $ClientPackage);
my ($NginxPid, %Running);           # the nginx of the block and its setup
my %Standin;                        # pid, port, log
my %OtherStandins;                  # port => { pid, port, log }
my $OtherStandinSeq = 0;
my $DeadPort;
my %Children;                       # pid => handle of start_request()
my $ChildSeq = 0;
my $Timeout = $DefaultTimeout;      # of the running block
my %LogCache;
my %UsedPorts;

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;


# Settings.

sub repeat_each        { $RepeatEach = shift if @_; $RepeatEach }
sub workers            { $Workers = shift if @_; $Workers }
sub master_on          { $MasterProcess = 1 }
sub master_off         { $MasterProcess = 0 }
sub log_level          { $LogLevel = shift if @_; $LogLevel }
sub worker_connections { $WorkerConnections = shift if @_; $WorkerConnections }
sub use_standin        { $UseStandin = 1 }
sub no_standin         { $NoStandin = 1 }
sub standin_options    { $StandinOptions = shift if @_; $StandinOptions }
sub no_shuffle         { }
sub no_long_string     { }
sub no_diff            { }

sub add_block_preprocessor {
    push @BlockPreprocessors, shift;
}


# Block parsing: Test::Base's parser and filters, used as an object so that
# none of its import magic (Spiffy, a default run_compare) applies.

{
    package Test::Seadragon::Spec;
    our @ISA = ('Test::Base');

    package Test::Seadragon::Spec::Filter;
    our @ISA = ('Test::Base::Filter');

    # Test::Base's eval filter returns the error as the section's value;
    # this one dies, and evaluates in package main like the test file.
    sub eval {
        my $self = shift;
        my $code = shift;
        my @r = CORE::eval("package main; no strict; no warnings 'once';\n"
                           . "#line 1 \"section eval\"\n$code");
        die "--- eval failed: $@" if $@;
        return @r;
    }
}

sub spec {
    $Spec ||= Test::Seadragon::Spec->new;
    return $Spec;
}

sub blocks {
    my $list = spec()->block_list;
    return wantarray ? @$list : scalar @$list;
}

# The value of a section: undef when absent, the string otherwise (the
# first value when an eval returned several).
sub section {
    my ($block, $name) = @_;
    return undef unless exists $block->{$name};
    my @v = @{ $block->{$name} };
    return $v[0];
}

sub section_list {
    my ($block, $name) = @_;
    return () unless exists $block->{$name};
    return @{ $block->{$name} };
}


# Paths, ports, processes.

sub init_file {
    return if $Repo;

    my $self = Cwd::abs_path(__FILE__);
    $Repo = File::Basename::dirname($self);
    $Repo = File::Basename::dirname($Repo) for 1 .. 3;   # Test, lib, t

    my $base = $ENV{TEST_NGINX_SERVROOT} || "$Repo/t/servroot";
    $base = File::Spec->rel2abs($base);
    (my $name = File::Basename::basename($0)) =~ s/\.t$//;
    $ServRoot = "$base/$name";

    $NginxBinary = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    $Valgrind = $ENV{TEST_NGINX_USE_VALGRIND};
    $StopTimeout = 30 if $Valgrind;

    $ENV{TEST_NGINX_SERVER_PORT} ||= free_port();
    $UsedPorts{ $ENV{TEST_NGINX_SERVER_PORT} } = 1;
    $ENV{TEST_NGINX_REPO} = $Repo;
    $ENV{TEST_NGINX_SERVROOT} = $ServRoot;

    become_subreaper();
    $SIG{PIPE} = 'IGNORE';
    $SIG{INT}  = sub { exit 130 };
    $SIG{TERM} = sub { exit 143 };
}

sub servroot    { $ServRoot }
sub server_root { $ServRoot }
sub html_dir    { "$ServRoot/html" }
sub server_port { $ENV{TEST_NGINX_SERVER_PORT} }

# A port below the ephemeral range (so no outgoing connection takes it)
# that nothing uses now.
sub free_port {
    my ($low) = (read_file('/proc/sys/net/ipv4/ip_local_port_range') // '')
                =~ /^(\d+)/;
    $low = 32768 unless $low && $low > 12000;
    for (1 .. 500) {
        my $port = 10000 + int rand($low - 10000);
        next if $UsedPorts{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      ReuseAddr => 1, Listen => 1)
            or next;
        close $s;
        $UsedPorts{$port} = 1;
        return $port;
    }
    die "no free port found\n";
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    my $text = <$fh>;
    return $text;
}

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "cannot write $path: $!\n";
    print $fh $text;
    close $fh or die "cannot write $path: $!\n";
}

sub tail_lines {
    my ($text, $n) = @_;
    return '' unless defined $text && length $text;
    my @lines = split /\n/, $text;
    splice @lines, 0, @lines - $n if @lines > $n;
    return join '', map { "    $_\n" } @lines;
}

# Waits up to $secs for $pid to exit; true when it did (and was reaped).
sub reap {
    my ($pid, $secs) = @_;
    my $deadline = Time::HiRes::time() + $secs;
    while (1) {
        my $r = waitpid $pid, POSIX::WNOHANG();
        return 1 if $r == $pid || $r == -1;
        return 0 if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.01);
    }
}

sub end_process {
    my ($pid, $first_signal, $secs) = @_;
    kill $first_signal, $pid;
    return if reap($pid, $secs);
    kill 'TERM', $pid;
    return if reap($pid, 2);
    kill 'KILL', $pid;
    reap($pid, 5);
}

sub children_of {
    my ($ppid) = @_;
    my @pids;
    opendir my $dh, '/proc' or return;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $stat = read_file("/proc/$pid/stat") // next;
        my ($parent) = $stat =~ /\)\s+\S+\s+(\d+)/ or next;
        push @pids, $pid if $parent == $ppid;
    }
    return sort { $a <=> $b } @pids;
}

sub cmdline {
    my $c = read_file("/proc/$_[0]/cmdline") // '';
    $c =~ tr/\0/ /;
    return $c;
}

# Forks and execs @cmd with stdout and stderr going to $log.
sub spawn {
    my ($log, @cmd) = @_;
    my $pid = fork // die "fork: $!\n";
    return $pid if $pid;

    local $SIG{PIPE} = 'DEFAULT';
    open STDIN, '<', '/dev/null';
    open STDOUT, '>>', $log or POSIX::_exit(126);
    open STDERR, '>&', \*STDOUT;
    { no warnings 'exec'; exec { $cmd[0] } @cmd; }
    print STDERR "cannot run $cmd[0]: $!\n";
    POSIX::_exit(127);
}

# Runs @cmd to the end; returns its exit status and its output.
sub run_capture {
    my (@cmd) = @_;
    File::Path::make_path($ServRoot);
    my $out = "$ServRoot/capture.$$.txt";
    unlink $out;
    my $pid = spawn($out, @cmd);
    waitpid $pid, 0;
    my $status = $?;
    my $text = read_file($out) // '';
    unlink $out;
    return ($status, $text);
}


# nginx.

my $NginxVersion;

sub nginx_version {
    return $NginxVersion if defined $NginxVersion;
    my ($status, $out) = run_capture($NginxBinary, '-v');
    $NginxVersion = $out =~ m{nginx/(\d+(?:\.\d+)*)} ? $1 : '0';
    return $NginxVersion;
}

sub load_modules {
    my $list = $ENV{TEST_NGINX_LOAD_MODULES};
    if (!defined $list) {
        my $default = "$Repo/build/ngx_seadragon_module.so";
        return -f $default ? ($default) : ();
    }
    return map { File::Spec->rel2abs($_) } split ' ', $list;
}

sub expand_vars {
    my ($text, $what) = @_;
    return $text unless defined $text && !ref $text;
    $text =~ s{\$(TEST_NGINX_[A-Z0-9_]+)}{
        defined $ENV{$1} ? $ENV{$1}
            : die "\$$1 is used in --- $what but is not set\n"
    }ge;
    return $text;
}

# The harness's own directives are left out where a section sets the same
# directive, so that a block never fails on "directive is duplicate".
sub nginx_conf {
    my (%s) = @_;       # main_config http_config config workers master log_level
    my $main = $s{main_config} // '';
    my $http = $s{http_config} // '';
    my $server = $s{config} // '';
    my $sets = sub { $_[0] =~ /^\s*\Q$_[1]\E\s/m };
    my $tmp = "$ServRoot/tmp";

    my @main = map { "load_module $_;" } load_modules();
    push @main, 'daemon off;';
    push @main, 'master_process ' . ($s{master} ? 'on' : 'off') . ';'
        unless $sets->($main, 'master_process');
    push @main, "worker_processes $s{workers};"
        unless $sets->($main, 'worker_processes');
    push @main, "error_log logs/error.log $s{log_level};",
                'pid logs/nginx.pid;';
    push @main, 'user root;' if $> == 0 && !$sets->($main, 'user');

    my @http = ('access_log logs/access.log;');
    my %defaults = (default_type => 'text/plain', keepalive_timeout => '68',
                    client_body_temp_path => "$tmp/client_body",
                    proxy_temp_path => "$tmp/proxy",
                    fastcgi_temp_path => "$tmp/fastcgi",
                    uwsgi_temp_path => "$tmp/uwsgi",
                    scgi_temp_path => "$tmp/scgi");
    for my $d (qw(default_type keepalive_timeout client_body_temp_path
                  proxy_temp_path fastcgi_temp_path uwsgi_temp_path
                  scgi_temp_path))
    {
        push @http, "$d $defaults{$d};" unless $sets->($http, $d);
    }

    # client_max_body_size 30M in the server, or in http when the test sets
    # its own in the server
    my @server = ("listen 127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT};",
                  'server_name localhost;');
    if (!$sets->($server, 'client_max_body_size')) {
        push @server, 'client_max_body_size 30M;';
    } elsif (!$sets->($http, 'client_max_body_size')) {
        push @http, 'client_max_body_size 30M;';
    }

    my $indent = sub { my $n = shift; join '', map { (' ' x $n) . "$_\n" } @_ };
    return join('', map { "$_\n" } @main) . "$main\n"
        . "events {\n"
        . "    accept_mutex off;\n"
        . "    worker_connections $WorkerConnections;\n"
        . "}\n\n"
        . "http {\n" . $indent->(4, @http) . "\n$http\n"
        . "    server {\n" . $indent->(8, @server) . "\n$server\n"
        . "    }\n"
        . "}\n";
}

sub write_nginx_conf {
    my %s = %Running;
    for my $name (qw(main_config http_config config)) {
        $s{$name} = expand_vars($s{$name}, $name);
    }
    write_file("$ServRoot/conf/nginx.conf", nginx_conf(%s));
}

# What Debian's nginx 1.22.1 itself never frees before exit() (the pool of
# the initial cycle, the environment, and the connection and event arrays
# of a worker or of a single process); nginx's own functions without
# symbols are "obj:".
our $NginxSuppressions = <<'_EOS_';
{
   nginx-init-cycle-pool
   Memcheck:Leak
   match-leak-kinds: definite
   ...
   fun:ngx_create_pool
   fun:main
}
{
   nginx-environment
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:ngx_alloc
   fun:ngx_set_environment
}
{
   nginx-single-process-connections
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:ngx_alloc
   obj:*/nginx
   fun:ngx_single_process_cycle
}
{
   nginx-worker-connections
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:ngx_alloc
   obj:*/nginx
   obj:*/nginx
   obj:*/nginx
   fun:ngx_spawn_process
}
_EOS_

sub nginx_command {
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', 'conf/nginx.conf',
               '-e', 'logs/error.log');
    return @cmd unless $Valgrind;

    my @vg = qw(valgrind -q --tool=memcheck --leak-check=full
                --show-possibly-lost=no --errors-for-leak-kinds=definite
                --track-origins=yes --num-callers=30);
    my $builtin = "$ServRoot/valgrind-nginx.suppress";
    write_file($builtin, $NginxSuppressions);
    push @vg, "--log-file=$ServRoot/logs/valgrind.%p.log",
              "--suppressions=$builtin";
    push @vg, "--suppressions=$Repo/t/valgrind.suppress"
        if -f "$Repo/t/valgrind.suppress";
    return (@vg, @cmd);
}


# How many workers to wait for (0 without a master; 1 for "auto").
sub expected_workers {
    return 0 unless $Running{master};
    my $main = $Running{main_config} // '';
    return $1 if $main =~ /^\s*worker_processes\s+(\d+)/m;
    return 1 if $main =~ /^\s*worker_processes\s/m;
    return $Running{workers} =~ /^\d+$/ ? $Running{workers} : 1;
}

sub worker_pids_of {
    my ($master) = @_;
    return grep { cmdline($_) !~ /cache (manager|loader)/ } children_of($master);
}

# Starts nginx; returns an error message or undef.
sub start_nginx {
    my $timeout = $Valgrind ? 30 : 5;
    my $pid = spawn("$ServRoot/logs/stderr.log", nginx_command());
    $NginxPid = $pid;

    my $deadline = Time::HiRes::time() + $timeout;
    my $want = expected_workers();
    while (1) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            $NginxPid = undef;
            return sprintf "nginx exited with status %d before it served", $? >> 8;
        }
        # the pid file is written once the listening sockets are open
        my $pidfile = read_file("$ServRoot/logs/nginx.pid") // '';
        if ($pidfile =~ /^\s*$pid\s*$/
            && port_listening($ENV{TEST_NGINX_SERVER_PORT}))
        {
            return undef if !$want || worker_pids_of($pid) >= $want;
        }
        return "nginx did not accept connections within $timeout s"
            if Time::HiRes::time() > $deadline;
        Time::HiRes::sleep(0.02);
    }
}

# Whether something listens on 127.0.0.1:$port, read from /proc so that no
# connection shows up in the error log.
sub port_listening {
    my ($port) = @_;
    my $tcp = read_file('/proc/net/tcp');
    if (!defined $tcp) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 1);
        return $s ? 1 : 0;
    }
    my $local = sprintf '(?:0100007F|00000000):%04X', $port;
    return $tcp =~ /^\s*\d+:\s+$local\s+\S+\s+0A\s/m ? 1 : 0;
}

# Stops nginx; returns an error message when it had to be forced.
sub stop_nginx {
    my $pid = $NginxPid or do { end_orphan_nginx(); return undef };
    $NginxPid = undef;
    my $problem;

    kill 'QUIT', $pid;
    unless (reap($pid, $StopTimeout)) {
        $problem = "nginx did not stop within $StopTimeout s of SIGQUIT";
        end_process($pid, 'TERM', 2);
    }
    end_orphan_nginx();
    return $problem;
}

# Ends the nginx processes left without their master: this process is
# their "subreaper" (see init_file), so they are its children now.
sub end_orphan_nginx {
    for my $pid (children_of($$)) {
        next if $Children{$pid} || ($Standin{pid} // 0) == $pid;
        next unless cmdline($pid) =~ /^nginx: |valgrind/;
        kill 'KILL', $pid;
        reap($pid, 2);
    }
}

# Makes this process the subreaper of what it starts (PR_SET_CHILD_SUBREAPER):
# the workers of an nginx master that died become its children instead of
# init's, and the harness can end them.
sub become_subreaper {
    my $nr = eval { require 'syscall.ph'; SYS_prctl() }
             // { x86_64 => 157, aarch64 => 167 }->{ (POSIX::uname())[4] };
    syscall($nr, 36, 1, 0, 0, 0) if $nr;
}

sub nginx_master_pid { $NginxPid }

sub nginx_worker_pids {
    my @pids = $NginxPid && $Running{master} ? worker_pids_of($NginxPid) : ();
    return @pids;
}

sub nginx_reload {
    my (%sections) = @_;
    die "nginx_reload: nginx is not running\n" unless $NginxPid;
    die "nginx_reload needs the master process (master_on())\n"
        unless $Running{master};

    for my $name (keys %sections) {
        die "nginx_reload: unknown section $name\n"
            unless $name =~ /^(main_config|http_config|config)$/;
        $Running{$name} = $sections{$name};
    }
    write_nginx_conf() if %sections;

    my %old = map { $_ => 1 } nginx_worker_pids();
    my $want = expected_workers() || 1;
    kill 'HUP', $NginxPid;
    eval {
        wait_until(sub {
            my @new = grep { !$old{$_} } nginx_worker_pids();
            my @old = grep { kill(0, $_) && cmdline($_) !~ /shutting down/ }
                      keys %old;
            @new >= $want && !@old;
        }, 'nginx to reload', $Valgrind ? 60 : 10);
        1;
    } or die $@ . tail_lines(error_log_text(), 10);
    return 1;
}

sub read_log {
    my ($path) = @_;
    my @st = stat $path or return '';
    my $c = $LogCache{$path};
    if (!$c || $c->{ino} != $st[1] || $st[7] < $c->{pos}) {
        $c = $LogCache{$path} = { ino => $st[1], pos => 0, text => '' };
    }
    if ($st[7] > $c->{pos} && open my $fh, '<', $path) {
        seek $fh, $c->{pos}, 0;
        local $/;
        my $more = <$fh> // '';
        $c->{text} .= $more;
        $c->{pos} += length $more;
    }
    return $c->{text};
}

sub error_log_text  { read_log("$ServRoot/logs/error.log") }
# nginx writes a request's access log line after its answer has gone out, so
# a client can read the log before the line of the request it has just seen
# answered: read until the file stays the same for 100 ms (2 s at most)
sub access_log_text {
    my $path = "$ServRoot/logs/" . ($_[0] // 'access.log');
    my $text = read_log($path);
    my $deadline = Time::HiRes::time() + 2;
    while (Time::HiRes::time() < $deadline) {
        Time::HiRes::sleep(0.1);
        my $again = read_log($path);
        return $again if $again eq $text;
        $text = $again;
    }
    return $text;
}


# The store and its tool.

my $StoreDir;                       # store_init()'s directory

sub store_tool_path {
    my $repo = File::Basename::dirname(Cwd::abs_path(__FILE__));
    $repo = File::Basename::dirname($repo) for 1 .. 3;   # Test, lib, t
    return "$repo/build/seadragon-store";
}

sub store_init {
    require File::Temp;
    $StoreDir = File::Temp->newdir();
    $ENV{TEST_NGINX_STORE} = "$StoreDir/store";
    store_tool('init');
    return $StoreDir;
}

sub store_tool {
    my $tool = store_tool_path();
    my $err = "$StoreDir/tool.err";
    my $out = `'$tool' --store '$ENV{TEST_NGINX_STORE}' @_ 2>'$err'`;
    die "seadragon-store @_ failed: " . (read_file($err) // '') if $?;
    chomp $out;
    return $out;
}


# A chat request of a source.

sub start_chat {
    my ($tag, $body, %headers) = @_;
    my ($source) = $tag =~ /^([a-z]+)/;
    return start_request('POST /api/chat', body => $body,
        headers => { 'X-Standin-Tag' => $tag, "X-$source" => 1, %headers });
}

# The file's chat(): its body and the headers every request sends.
my $ChatBody = '{"model":"llama3:70b","messages":[]}';
my @ChatHeaders = ('X-Standin-Tokens' => 1);

sub chat_defaults {
    my (%a) = @_;
    $ChatBody = delete $a{body} if exists $a{body};
    @ChatHeaders = %a;
    return;
}

# start_chat with the file's defaults; "port" and "key" are not headers
# but where to send it and the key to send ("Authorization: Bearer KEY").
sub chat {
    my ($tag, @pairs) = @_;
    my (%opt, @headers);
    while (my ($name, $value) = splice @pairs, 0, 2) {
        if ($name eq 'port' || $name eq 'key') {
            $opt{$name} = $value;
        } else {
            push @headers, $name, $value;
        }
    }
    my %defaults = @ChatHeaders;
    my $port = delete $defaults{port};
    $opt{port} //= ref $port eq 'CODE' ? $port->() : $port;
    push @headers, Authorization => "Bearer $opt{key}" if $opt{key};
    my ($source) = $tag =~ /^([a-z]+)/;
    my $h = start_request('POST /api/chat', body => $ChatBody,
        ($opt{port} ? (port => $opt{port}) : ()),
        headers => { 'X-Standin-Tag' => $tag, "X-$source" => 1,
                     %defaults, @headers });
    $h->{tag} = $tag;
    return $h;
}

# Holding the gate: a request the stand-in holds (X-Standin-Hold) until
# standin_release(), once the stand-in runs it.
sub hold_gate {
    my $start = ref $_[0] eq 'CODE' ? shift : undef;
    my $tag = @_ % 2 ? shift : 'hold';
    my $h = $start ? $start->() : chat($tag, 'X-Standin-Hold' => 1, @_);
    wait_until(sub { standin_stats()->{active} == 1 },
               ($start ? 'the hold' : $tag) . ' to reach Ollama');
    return $h;
}

sub release_gate {
    my ($h) = @_;
    standin_release();
    return wait_request($h);
}

sub served_tags { join ",", map { $_->{tag} } @{ standin_requests() } }

# "status body" of an answer, its body on one line.
sub said {
    my $r = shift;
    (my $b = $r->{body} // '') =~ s/\n/ /g;
    return "$r->{status} $b";
}

# The server's GET /api/admin/queue; the sources of GET /api/admin/stats,
# or the counters of one source.
sub admin_queue { json_decode(request('GET /api/admin/queue')->{body}) }

sub admin_stats {
    my $r = request('GET /api/admin/stats');
    my $sources = json_decode($r->{body})->{sources};
    return @_ ? $sources->{ $_[0] } : $sources;
}

# The gate suites' set-up (t/004, t/008): zone "ollama" of capacity
# $TEST_NGINX_CAPACITY (1 unless the file sets it), sources coding, chat
# and api, the access log logs/gate.log, and chat() saying "hi" for one
# token at once.  $::http_config and $::config are the defaults of the
# blocks, for a block that extends them.
sub gate_setup {
    $::http_config = <<'_EOC_';
    seadragon_zone ollama:1m capacity=$TEST_NGINX_CAPACITY;
    seadragon_source coding priority=1 if=$http_x_coding;
    seadragon_source chat   priority=2 if=$http_x_chat;
    seadragon_source api    priority=3;
    log_format gate "$http_x_standin_tag $seadragon_queue_id $seadragon_source $pid";
_EOC_
    $::config = <<'_EOC_';
    access_log logs/gate.log gate;
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
_EOC_
    $ENV{TEST_NGINX_CAPACITY} //= 1;
    add_block_preprocessor(sub {
        my $block = shift;
        $block->set_value("http_config", $::http_config)
            unless defined $block->http_config;
        $block->set_value("config", $::config) unless defined $block->config;
    });
    chat_defaults(body => '{"model":"llama3:70b","messages":'
                          . '[{"role":"user","content":"hi"}]}',
                  'X-Standin-Tokens' => 1, 'X-Standin-Delay-Ms' => 0);
    return;
}


# The stand-in Ollama.

sub example_conf {
    my $repo = File::Basename::dirname(Cwd::abs_path(__FILE__));
    $repo = File::Basename::dirname($repo) for 1 .. 3;   # Test, lib, t
    open my $fh, '<', "$repo/conf/seadragon.conf" or die "conf/seadragon.conf: $!";
    my $conf = do { local $/; <$fh> };
    $conf =~ s/127\.0\.0\.1:11434/127.0.0.1:\$TEST_NGINX_OLLAMA_PORT/g
        or die "no Ollama address in the example";
    $conf =~ s/listen\s+127\.0\.0\.1:8080;/listen 127.0.0.1:\$TEST_NGINX_EXAMPLE_PORT;/
        or die "no listen line in the example";
    $conf =~ s{/var/log/nginx/}{\$TEST_NGINX_SERVROOT/logs/}g;
    $conf =~ s{/var/lib/seadragon/store}{\$TEST_NGINX_STORE}
        or die "no store in the example";
    $conf =~ s{/usr/share/seadragon/html/}{\$TEST_NGINX_REPO/conf/html/}
        or die "no admin page in the example";
    return $conf;
}

sub standin_script {
    return $ENV{TEST_NGINX_STANDIN} || "$Repo/scripts/ollama-standin.py";
}

sub standin_start {
    File::Path::make_path($ServRoot);
    %Standin = standin_spawn("$ServRoot/standin.log", $StandinOptions);
}

# Starts a stand-in with these options on a free port; returns its pid,
# port and log once it listens.
sub standin_spawn {
    my ($log, $options) = @_;
    my $script = standin_script();
    die "the stand-in Ollama $script does not exist\n" unless -f $script;

    write_file($log, '');

    local $ENV{PYTHONUNBUFFERED} = 1;
    my @cmd = ('python3', $script, '--port', '0',
               Text::ParseWords::shellwords($options // ''));
    my $pid = spawn($log, @cmd);

    my $deadline = Time::HiRes::time() + 10;
    while (1) {
        my $out = read_file($log) // '';
        if ($out =~ /^listening on [\d.]+:(\d+)/m) {
            return (pid => $pid, port => $1, log => $log);
        }
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            die "the stand-in Ollama exited: @cmd\n" . tail_lines($out, 20);
        }
        if (Time::HiRes::time() > $deadline) {
            end_process($pid, 'KILL', 2);
            die "the stand-in Ollama did not say 'listening on' within 10 s: @cmd\n"
                . tail_lines($out, 20);
        }
        Time::HiRes::sleep(0.02);
    }
}

sub standin_running {
    return 0 unless $Standin{pid};
    return 1 if waitpid($Standin{pid}, POSIX::WNOHANG()) == 0;
    diag("the stand-in Ollama had exited; it is started again:\n"
         . tail_lines(read_file($Standin{log}), 20));
    %Standin = ();
    return 0;
}

sub standin_stop {
    standin_stop_another($_) for keys %OtherStandins;
    return unless $Standin{pid};
    end_process($Standin{pid}, 'TERM', 2);
    %Standin = ();
}

# Calls a control endpoint of the stand-in, or of the one on $port.
sub standin_call {
    my ($line, $port) = @_;
    die "the stand-in Ollama is not running (no section of this block mentions "
        . "\$TEST_NGINX_OLLAMA_PORT: call use_standin())\n"
        unless $port || $Standin{port};
    my $r = request($line, port => $port || $Standin{port}, timeout => 10, body =>
                    $line =~ /^POST/ ? '' : undef);
    die "stand-in $line: " . ($r->{error} // "status $r->{status}") . "\n"
        if $r->{error} || $r->{status} != 200;
    return json_decode($r->{body});
}

sub standin_requests { standin_call('GET /_standin/requests', $_[0]) }
sub standin_stats    { standin_call('GET /_standin/stats', $_[0]) }
sub standin_reset    { standin_call('POST /_standin/reset', $_[0]); return }
sub standin_release  { standin_call('POST /_standin/release', $_[0]); return }

# Another stand-in, for a test of several Ollama servers.
sub standin_start_another {
    my ($options) = @_;
    File::Path::make_path($ServRoot);
    my %s = standin_spawn("$ServRoot/standin-" . ++$OtherStandinSeq . ".log", $options);
    $OtherStandins{ $s{port} } = \%s;
    return $s{port};
}

sub standin_stop_another {
    my ($port) = @_;
    my $s = delete $OtherStandins{$port}
        or die "standin_stop_another: no stand-in of this test on port $port\n";
    end_process($s->{pid}, 'TERM', 2);
    return;
}


# npm packages of t/package.json, in build/node.

sub node_modules {
    my $dir = "$Repo/build/node";
    my $manifest = read_file("$Repo/t/package.json")
        // die "cannot read $Repo/t/package.json: $!\n";
    my $wanted = $JSON->decode($manifest)->{dependencies} || {};
    my $installed = sub {
        for my $name (sort keys %$wanted) {
            my $meta = read_file("$dir/node_modules/$name/package.json") // return 0;
            my $version = eval { $JSON->decode($meta)->{version} } // return 0;
            return 0 if $version ne $wanted->{$name};
        }
        return 1;
    };
    return "$dir/node_modules" if $installed->();

    File::Path::make_path($dir);
    open my $lock, '>>', "$dir/.install.lock" or die "cannot open $dir/.install.lock: $!\n";
    flock $lock, Fcntl::LOCK_EX() or die "cannot lock $dir/.install.lock: $!\n";
    if (!$installed->()) {
        write_file("$dir/package.json", $manifest);
        my ($status, $out) = run_capture('npm', 'install', '--prefix', $dir,
                                         '--no-audit', '--no-fund', '--loglevel=error');
        die "npm install in $dir failed:\n" . tail_lines($out, 30)
            if $status != 0 || !$installed->();
    }
    close $lock;
    return "$dir/node_modules";
}

# How many requests the zone has taken in, from the module's debug lines
# ("seadragon queued #N"), in every worker: a test waits on it to know
# that a request it sent is in line before it sends the next.
sub queued_count {
    my @m = error_log_text() =~ /seadragon queued #\d+/g;
    return scalar @m;
}


# The HTTP client.

sub json_encode { $JSON->encode($_[0]) }
sub json_decode { $JSON->decode($_[0]) }

# Parses "METHOD URI [HTTP/1.x]\nbody" as Test::Nginx does.
sub parse_request_text {
    my ($text) = @_;
    $text =~ s/\A\s+//;
    my ($line, $body) = split /\n/, $text, 2;
    my ($method, $uri, $version) = split ' ', $line // '';
    die "the request line is empty\n" unless defined $method;
    return ($method, $uri // '/', $version // 'HTTP/1.1', $body);
}

sub header_pairs {
    my ($headers) = @_;
    return () unless $headers;
    if (ref $headers eq 'HASH') {
        return map { [$_, $headers->{$_}] } sort keys %$headers;
    }
    my @list = @$headers;
    my @pairs;
    push @pairs, [splice @list, 0, 2] while @list;
    return @pairs;
}

sub build_request {
    my ($method, $uri, $version, $body, @headers) = @_;
    my %have = map { lc($_->[0]) => 1 } @headers;
    my $req = "$method $uri $version\r\n";
    $req .= "Host: localhost\r\n" unless $have{host};
    $req .= "Connection: close\r\n" unless $have{connection};
    $req .= "$_->[0]: $_->[1]\r\n" for @headers;
    if (defined $body) {
        utf8::encode($body) if utf8::is_utf8($body);
        $req .= "Content-Length: " . length($body) . "\r\n"
            unless $have{'content-length'} || $have{'transfer-encoding'};
    }
    return $req . "\r\n" . ($body // '');
}

# The method and the bytes to send for request($line, %args).
sub request_bytes {
    my ($line, %a) = @_;
    if (defined $a{raw}) {
        my ($method) = $a{raw} =~ /^\s*(\S+)/;
        return ($method // '', $a{raw});
    }
    my ($method, $uri, $version, $body) = parse_request_text($line);
    $body = $a{body} if exists $a{body};
    return ($method, build_request($method, $uri, $version, $body,
                                   header_pairs($a{headers})));
}

sub request {
    my ($line, %a) = @_;
    my ($method, $bytes) = request_bytes($line, %a);
    my %res;
    http_exchange(\%res, $bytes, method => $method, %a);
    return \%res;
}

# Sends $bytes and reads one response into %$res.  Stops at the timeout
# (res->{error} = "timeout ...") with what arrived so far.
sub http_exchange {
    my ($res, $bytes, %a) = @_;
    my $timeout = $a{timeout} // $Timeout;
    %$res = (status => undef, headers => {}, header_list => [], body => '',
             chunks => [], first_byte => undef, end => undef, error => undef);
    my $deadline = Time::HiRes::time() + $timeout;

    my $sock = IO::Socket::INET->new(
        PeerAddr => $a{host} // '127.0.0.1',
        PeerPort => $a{port} // $ENV{TEST_NGINX_SERVER_PORT},
        Proto => 'tcp', Timeout => $timeout);
    unless ($sock) {
        $res->{error} = "cannot connect: $@";
        $res->{end} = Time::HiRes::time();
        return $res;
    }
    $sock->blocking(0);

    my $out = $bytes;
    my $in = '';
    my $state = { phase => 'head', head_request => ($a{method} // '') eq 'HEAD' };
    my $write_error;

    while (1) {
        my $left = $deadline - Time::HiRes::time();
        if ($left <= 0) {
            $res->{error} = "timeout after ${timeout}s";
            $res->{timed_out} = 1;
            last;
        }
        my $sel = IO::Select->new($sock);
        my ($r, $w) = IO::Select->select($sel, length $out ? $sel : undef,
                                         undef, $left);
        if ($w && @$w) {
            my $n = syswrite $sock, $out;
            if (defined $n) {
                substr($out, 0, $n) = '';
            } elsif ($! != Errno::EAGAIN() && $! != Errno::EINTR()) {
                # the server may have answered (413) and closed: read on
                $write_error = "$!";
                $out = '';
            }
        }
        next unless $r && @$r;

        my $n = sysread $sock, my $buf, 65536;
        if (!defined $n) {
            next if $! == Errno::EAGAIN() || $! == Errno::EINTR();
            $res->{error} = "read failed: $!";
            last;
        }
        my $now = Time::HiRes::time();
        if ($n == 0) {
            if ($state->{phase} eq 'close') {
                $state->{phase} = 'done';
            } elsif ($state->{phase} ne 'done') {
                $res->{error} = length($in) || defined $res->{status}
                    ? "connection closed before the response was complete"
                    : "connection closed without a response";
                $res->{error} .= " (write: $write_error)" if $write_error;
            }
            last;
        }
        $res->{first_byte} //= $now;
        $in .= $buf;
        unless (eval { parse_response($res, $state, \$in, $now); 1 }) {
            $res->{error} = $@;
            last;
        }
        last if $state->{phase} eq 'done';
    }
    $res->{end} = Time::HiRes::time();
    close $sock;
    return $res;
}

sub parse_response {
    my ($res, $state, $in, $now) = @_;

    while ($state->{phase} eq 'head') {
        $$in =~ s/\A(.*?)\r?\n\r?\n//s or return;
        my ($status_line, @lines) = split /\r?\n/, $1;
        my ($code) = $status_line =~ m{^HTTP/\d\.\d\s+(\d{3})}
            or die "bad status line: $status_line\n";
        next if $code =~ /^1/;      # 100 Continue
        $res->{status} = $code + 0;
        $res->{status_line} = $status_line;
        for (@lines) {
            my ($name, $value) = /^([^:]+):\s*(.*?)\s*$/ or next;
            push @{ $res->{header_list} }, [$name, $value];
            my $key = lc $name;
            $res->{headers}{$key} = defined $res->{headers}{$key}
                ? "$res->{headers}{$key}, $value" : $value;
        }
        my $h = $res->{headers};
        if ($state->{head_request} || $code == 204 || $code == 304) {
            $state->{phase} = 'done';
        } elsif (($h->{'transfer-encoding'} // '') =~ /chunked/i) {
            $state->{phase} = 'chunked';
        } elsif (defined $h->{'content-length'}) {
            $state->{phase} = 'length';
            $state->{left} = $h->{'content-length'};
            $state->{phase} = 'done' if $state->{left} == 0;
        } else {
            $state->{phase} = 'close';
        }
    }

    if ($state->{phase} eq 'chunked') {
        while (1) {
            if ($state->{trailer}) {
                # trailers end with an empty line
                $$in =~ s/\A(?:[^\r\n]+\r?\n)*\r?\n//s or return;
                $state->{phase} = 'done';
                return;
            }
            $$in =~ /\A([0-9a-fA-F]+)[^\r\n]*\r?\n/ or return;
            my ($head, $size) = ($&, hex $1);
            if ($size == 0) {
                substr($$in, 0, length $head) = '';
                $state->{trailer} = 1;
                next;
            }
            return if length($$in) < length($head) + $size + 2;
            my $data = substr($$in, length $head, $size);
            substr($$in, 0, length($head) + $size) = '';
            $$in =~ s/\A\r?\n//;
            $res->{body} .= $data;
            push @{ $res->{chunks} }, [$now, $data];
        }
    }

    if ($state->{phase} eq 'length' || $state->{phase} eq 'close') {
        return unless length $$in;
        my $data = $$in;
        if ($state->{phase} eq 'length') {
            $data = substr($data, 0, $state->{left});
            $state->{left} -= length $data;
            $state->{phase} = 'done' if $state->{left} <= 0;
        }
        $$in = '';
        $res->{body} .= $data;
        push @{ $res->{chunks} }, [$now, $data];
    }
}

sub start_request {
    my ($line, %a) = @_;
    my ($method, $bytes) = request_bytes($line, %a);
    my $dir = "$ServRoot/clients";
    File::Path::make_path($dir);
    my $file = "$dir/" . ++$ChildSeq . ".$$.json";
    $a{timeout} //= $Timeout;

    # SIGTERM is blocked until the child has its handler
    my $term = POSIX::SigSet->new(POSIX::SIGTERM());
    my $old = POSIX::SigSet->new;
    POSIX::sigprocmask(POSIX::SIG_BLOCK(), $term, $old);
    my $pid = fork;
    if (!defined $pid) {
        POSIX::sigprocmask(POSIX::SIG_SETMASK(), $old);
        die "fork: $!\n";
    }
    if ($pid) {
        POSIX::sigprocmask(POSIX::SIG_SETMASK(), $old);
        my $h = { pid => $pid, file => $file, line => $line };
        $Children{$pid} = $h;
        return $h;
    }

    my %res;
    eval {
        $SIG{INT} = 'DEFAULT';
        local $SIG{TERM} = sub { die "aborted\n" };
        POSIX::sigprocmask(POSIX::SIG_SETMASK(), $old);
        http_exchange(\%res, $bytes, method => $method, %a);
        1;
    } or do {
        my $err = $@;
        if ($err eq "aborted\n") {
            $res{aborted} = 1;
            $res{error} = 'aborted by abort_request';
            $res{end} = Time::HiRes::time();
        } else {
            $res{error} = $err;
        }
    };
    $SIG{TERM} = 'DEFAULT';
    eval {
        write_file("$file.tmp", $JSON->encode(\%res));
        rename "$file.tmp", $file;
    };
    POSIX::_exit(0);
}

sub collect {
    my ($h) = @_;
    return $h->{result} if $h->{result};
    delete $Children{ $h->{pid} };
    my $text = read_file($h->{file});
    unlink $h->{file};
    my $res = defined $text ? eval { $JSON->decode($text) } : undef;
    $res ||= { status => undef, headers => {}, body => '', chunks => [],
               error => "the client process ended without a result"
                        . ($h->{signal} ? " (signal $h->{signal})" : '') };
    $h->{result} = $res;
    return $res;
}

sub wait_request {
    my ($h) = @_;
    die "wait_request: not a handle from start_request\n"
        unless ref $h eq 'HASH' && $h->{pid};
    return $h->{result} if $h->{result};
    unless (reap($h->{pid}, $Timeout + 30)) {
        kill 'KILL', $h->{pid};
        reap($h->{pid}, 5);
    }
    return collect($h);
}

sub wait_all {
    return map { wait_request($_) } @_;
}

sub abort_request {
    my ($h) = @_;
    return $h->{result} if $h->{result};
    kill 'TERM', $h->{pid};
    unless (reap($h->{pid}, 5)) {
        kill 'KILL', $h->{pid};
        reap($h->{pid}, 5);
        $h->{signal} = 'KILL';
    }
    my $res = collect($h);
    $res->{aborted} = 1 if $h->{signal};
    return $res;
}

sub end_children {
    for my $h (values %Children) {
        kill 'TERM', $h->{pid};
    }
    for my $h (values %Children) {
        unless (reap($h->{pid}, 2)) {
            kill 'KILL', $h->{pid};
            reap($h->{pid}, 2);
        }
        unlink $h->{file}, "$h->{file}.tmp";
    }
    %Children = ();
}

sub wait_until {
    my ($cond, $what, $timeout) = @_;
    $what //= 'a condition';
    $timeout //= 10;
    my $deadline = Time::HiRes::time() + $timeout;
    my $last_error;
    while (1) {
        my $ok = eval { $cond->() };
        $last_error = $@ if $@;
        return $ok if $ok;
        if (Time::HiRes::time() > $deadline) {
            die "timed out waiting for $what"
                . ($last_error ? " (last error: $last_error)" : '') . "\n";
        }
        Time::HiRes::sleep(0.02);
    }
}


# Running the blocks.

sub run_tests {
    $ClientPackage = caller;
    init_file();

    my $blocks = eval { spec()->block_list };
    if (!$blocks) {
        fail("$0 - the blocks can be parsed");
        diag($@);
        done_testing();
        return;
    }

    for my $block (@$blocks) {
        my $prepared = eval {
            $block->run_filters unless $block->is_filtered;
            $_->($block) for @BlockPreprocessors;
            1;
        };
        if (!$prepared) {
            fail($block->name . " - sections are valid");
            diag($@);
            next;
        }
        for my $i (1 .. $RepeatEach) {
            run_block($block);
        }
    }

    cleanup_all();
    done_testing();
}

sub skip_block {
    my ($block) = @_;
    my $spec = section($block, 'skip_nginx');
    if (defined $spec) {
        my ($op, $want) = $spec =~ /^(?:\d+\s*:)?\s*(<=|>=|==|!=|<|>)\s*([\d.]+)\s*$/
            or die "--- skip_nginx: expected [N:] OP VERSION, such as < 1.21.0\n";
        my $have = nginx_version();
        my $cmp = version_cmp($have, $want);
        my %ops = ('<' => $cmp < 0, '<=' => $cmp <= 0, '>' => $cmp > 0,
                   '>=' => $cmp >= 0, '==' => $cmp == 0, '!=' => $cmp != 0);
        return "nginx $have $op $want" if $ops{$op};
    }
    $spec = section($block, 'skip_eval');
    if (defined $spec) {
        (my $code = $spec) =~ s/^\s*\d+\s*:\s*//;
        my $yes = eval "package $ClientPackage; no strict; $code";
        die "--- skip_eval failed: $@" if $@;
        return "skip_eval: $code" if $yes;
    }
    return undef;
}

sub version_cmp {
    my @a = split /\./, shift;
    my @b = split /\./, shift;
    while (@a || @b) {
        my $c = (shift(@a) // 0) <=> (shift(@b) // 0);
        return $c if $c;
    }
    return 0;
}

sub parse_seconds {
    my ($v, $what) = @_;
    return undef unless defined $v;
    $v =~ /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/
        or die "--- $what: expected seconds, got '$v'\n";
    return $2 && $2 eq 'ms' ? $1 / 1000 : $1;
}

sub run_block {
    my ($block) = @_;
    my $name = $block->name;

    my $skip = eval { skip_block($block) };
    if ($@) {
        fail("$name - sections are valid");
        diag($@);
        return;
    }
    if ($skip) {
        Test::More->builder->skip("$name - $skip");
        return;
    }

    my $ok = eval { run_block_steps($block); 1 };
    my $err = $@;
    end_children();
    my $stop_problem = stop_nginx();

    if (!$ok) {
        fail("$name - the block runs");
        diag($err);
    }
    if ($stop_problem) {
        fail("$name - nginx stops on SIGQUIT");
        diag($stop_problem);
    }
    check_valgrind($name) if $Valgrind && !defined section($block, 'must_die');
}

sub block_settings {
    my ($block) = @_;
    my $workers = section($block, 'workers') // $Workers;
    my $master = defined section($block, 'master_on') ? 1
               : defined section($block, 'master_off') ? 0
               : $MasterProcess;
    if (!defined $master) {
        my ($n) = (section($block, 'main_config') // '')
                  =~ /^\s*worker_processes\s+(\d+|auto)/m;
        $master = ($n // $workers) =~ /^(?:auto|[2-9]|\d\d+)$/ ? 1 : 0;
    }
    return (workers => $workers, master => $master,
            log_level => section($block, 'log_level') // $LogLevel,
            main_config => section($block, 'main_config'),
            http_config => section($block, 'http_config'),
            config => section($block, 'config'));
}

my @VarSections = qw(main_config http_config config request raw_request
                     more_headers client);

sub prepare_ports {
    my ($block) = @_;
    my $text = join "\n", grep { defined && !ref } map { section($block, $_) }
                                                   @VarSections;

    for my $var ($text =~ /\b(TEST_NGINX_[A-Z0-9_]*_PORT)\b/g) {
        next if $var eq 'TEST_NGINX_SERVER_PORT' || $var eq 'TEST_NGINX_OLLAMA_PORT';
        $ENV{$var} ||= free_port();
    }

    my $wants = $UseStandin || $text =~ /TEST_NGINX_OLLAMA_PORT/;
    if ($NoStandin || defined section($block, 'no_standin')) {
        $DeadPort ||= free_port();
        $ENV{TEST_NGINX_OLLAMA_PORT} = $DeadPort;
    } else {
        standin_start() if $wants && !standin_running();
        $ENV{TEST_NGINX_OLLAMA_PORT} = $Standin{port} || ($DeadPort ||= free_port());
    }
    standin_reset() if standin_running();
}

sub prepare_servroot {
    File::Path::make_path($ServRoot);
    for my $dir (qw(conf logs html tmp clients)) {
        File::Path::remove_tree("$ServRoot/$dir");
        File::Path::make_path("$ServRoot/$dir");
    }
    %LogCache = ();
}

sub run_block_steps {
    my ($block) = @_;
    my $name = $block->name;

    $Timeout = parse_seconds(section($block, 'timeout'), 'timeout')
               // $DefaultTimeout;
    prepare_ports($block);
    prepare_servroot();
    %Running = block_settings($block);
    write_nginx_conf();
    write_user_files($block);

    if (defined section($block, 'must_die')) {
        my ($status, $out) = run_capture($NginxBinary, '-t', '-p', "$ServRoot/",
                                         '-c', 'conf/nginx.conf',
                                         '-e', 'logs/error.log');
        ok($status != 0, "$name - nginx -t refuses the configuration")
            or diag("nginx -t said:\n" . tail_lines($out, 20));
        my $text = $out . "\n" . error_log_text();
        check_logs($block, sub { $text }, 'nginx -t output');
        return;
    }

    if (my $err = start_nginx()) {
        fail("$name - nginx starts");
        diag("$err\nstderr:\n" . tail_lines(read_file("$ServRoot/logs/stderr.log"), 10)
             . "error.log:\n" . tail_lines(error_log_text(), 20));
        return;
    }

    my $res;
    if (defined section($block, 'request') || defined section($block, 'raw_request')) {
        $res = send_block_request($block);
        check_response($block, $res);
    }

    if (defined section($block, 'client')) {
        run_client($block);
    }

    if (my $wait = parse_seconds(section($block, 'wait'), 'wait')) {
        Time::HiRes::sleep($wait);
    }

    check_logs($block, \&error_log_text, 'error.log');
    check_nginx_health($block);
}

# --- user_files: ">>> name" lines, each followed by the file's content; or
# with eval, [[name => content], ...].  Written under html/.
sub write_user_files {
    my ($block) = @_;
    my $spec = section($block, 'user_files');
    return unless defined $spec;
    my @files;
    if (ref $spec eq 'ARRAY') {
        @files = map { [@$_] } @$spec;
    } else {
        for my $part (split /^>>> /m, $spec) {
            next unless length $part;
            my ($name, $content) = split /\n/, $part, 2;
            push @files, [$name, $content // ''];
        }
    }
    for my $f (@files) {
        my ($name, $content) = @$f;
        $name =~ s/^\s+|\s+$//g;
        die "--- user_files: bad file name '$name'\n"
            if $name eq '' || $name =~ m{(^|/)\.\.(/|$)} || $name =~ m{^/};
        my $path = "$ServRoot/html/$name";
        File::Path::make_path(File::Basename::dirname($path));
        write_file($path, $content);
    }
}

sub send_block_request {
    my ($block) = @_;
    my $raw = section($block, 'raw_request');
    my ($method, $bytes);

    if (defined $raw) {
        die "--- raw_request: a list of requests is not supported\n" if ref $raw;
        ($method, $bytes) = request_bytes(undef, raw => expand_vars($raw, 'raw_request'));
    } else {
        my $text = section($block, 'request');
        die "--- request: a list of requests is not supported: use --- client\n"
            if ref $text;
        $text = expand_vars($text, 'request');
        my ($m, $uri, $version, $body) = parse_request_text($text);
        $body //= '';
        $body =~ s/^\s+|\s+$//gs;
        my @headers;
        for my $line (split /\n/, expand_vars(section($block, 'more_headers') // '',
                                              'more_headers')) {
            next if $line =~ /^\s*(#|$)/;
            my ($hn, $hv) = $line =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/
                or die "--- more_headers: expected 'Name: value', got '$line'\n";
            push @headers, [$hn, $hv];
        }
        $method = $m;
        $bytes = build_request($m, $uri, $version,
                               length $body ? $body : undef, @headers);
    }

    my %res;
    http_exchange(\%res, $bytes, method => $method);
    return \%res;
}

sub is_text {
    my ($got, $expected, $name) = @_;
    if (defined $got && defined $expected && $got ne $expected
        && "$got$expected" =~ /\n./ && eval { require Text::Diff; 1 })
    {
        fail($name);
        diag(Text::Diff::diff(\$expected, \$got,
                              { STYLE => 'Unified', FILENAME_A => 'expected',
                                FILENAME_B => 'got' }));
        return 0;
    }
    return is($got, $expected, $name);
}

sub check_response {
    my ($block, $res) = @_;
    my $name = $block->name;
    my $abort = defined section($block, 'abort');

    if ($res->{error} && !$abort) {
        fail("$name - response received");
        diag("$res->{error}; received " . length($res->{body}) . " bytes of body"
             . (defined $res->{status} ? " after status $res->{status}" : ''));
    }

    my $code = section($block, 'error_code');
    if (defined $code || !$abort || defined $res->{status}) {
        is($res->{status}, $code // 200, "$name - status code ok")
            or diag("body:\n" . tail_lines(substr($res->{body}, 0, 2000), 20));
    }

    for my $line (split /\n/, section($block, 'response_headers') // '') {
        next if $line =~ /^\s*(#|$)/;
        if ($line =~ /^\s*!\s*([^:\s]+)\s*$/) {
            ok(!defined $res->{headers}{ lc $1}, "$name - header $1 is absent")
                or diag("$1: $res->{headers}{lc $1}");
            next;
        }
        my ($hn, $hv) = $line =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/
            or die "--- response_headers: expected 'Name: value' or '!Name', got '$line'\n";
        is($res->{headers}{ lc $hn }, $hv, "$name - header $hn ok");
    }

    for my $line (split /\n/, section($block, 'response_headers_like') // '') {
        next if $line =~ /^\s*(#|$)/;
        my ($hn, $re) = $line =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/
            or die "--- response_headers_like: expected 'Name: regex', got '$line'\n";
        like($res->{headers}{ lc $hn } // '', qr/$re/, "$name - header $hn like ok")
            or diag(defined $res->{headers}{ lc $hn } ? '' : "header $hn is absent");
    }

    my $body = section($block, 'response_body');
    if (defined $body) {
        if (ref $body eq 'Regexp') {
            like($res->{body}, $body, "$name - response_body - like");
        } else {
            is_text($res->{body}, $body, "$name - response_body - response is expected");
        }
    }

    my $like = section($block, 'response_body_like');
    if (defined $like) {
        my $re = ref $like eq 'Regexp' ? $like : qr/$like/s;
        like($res->{body}, $re, "$name - response_body_like - response is expected");
    }
}

sub run_client {
    my ($block) = @_;
    my $name = $block->name;
    my $code = expand_vars(section($block, 'client'), 'client');
    (my $file = "$name --- client") =~ s/["\n]/ /g;

    my $out = Test::Seadragon::Eval::run(
        "package $ClientPackage; use warnings; no warnings qw(redefine once);\n"
        . "#line 1 \"$file\"\n$code\n;");
    my $err = $@;

    my $expected = section($block, 'client_output');
    my $like = section($block, 'client_output_like');
    if ($err) {
        fail("$name - client code runs");
        diag("client code died: $err");
        return;
    }
    if (!defined $expected && !defined $like) {
        pass("$name - client code runs");
        return;
    }
    (my $got = $out // '') =~ s/\n+\z//;
    if (defined $expected) {
        (my $e = $expected) =~ s/\n+\z//;
        is_text($got, $e, "$name - client_output is expected");
    }
    if (defined $like) {
        my $re = ref $like eq 'Regexp' ? $like
               : do { (my $p = $like) =~ s/\n+\z//; qr/$p/s };
        like($got, $re, "$name - client_output_like is expected");
    }
}

sub log_patterns {
    my ($block, $section) = @_;
    my @values = section_list($block, $section);
    return () unless @values;
    if (@values == 1 && !ref $values[0]) {
        return grep { /\S/ } split /\n/, $values[0];
    }
    return map { ref eq 'ARRAY' ? @$_ : $_ } @values;
}

sub log_match {
    my ($text, $pattern) = @_;
    if (ref $pattern eq 'Regexp') {
        return grep { $_ =~ $pattern } split /\n/, $text;
    }
    return () if index($text, $pattern) < 0;
    return grep { index($_, $pattern) >= 0 } split /\n/, $text;
}

sub check_logs {
    my ($block, $read, $where) = @_;
    my $name = $block->name;

    my @want = log_patterns($block, 'error_log');
    if (@want) {
        my $deadline = Time::HiRes::time() + $ErrorLogWait;
        while (Time::HiRes::time() < $deadline) {
            my $text = $read->();
            last unless grep { !log_match($text, $_) } @want;
            Time::HiRes::sleep(0.05);
        }
        my $text = $read->();
        for my $p (@want) {
            ok(scalar(log_match($text, $p)),
               "$name - pattern \"$p\" matches a line in $where")
                or diag("last lines of $where:\n" . tail_lines($text, 15));
        }
    }

    my @not = log_patterns($block, 'no_error_log');
    if (@not) {
        my $text = $read->();
        for my $p (@not) {
            my @hits = log_match($text, $p);
            ok(!@hits, "$name - pattern \"$p\" does not match any line in $where")
                or diag("matching lines:\n" . tail_lines(join("\n", @hits[0 .. ($#hits < 9 ? $#hits : 9)]), 10));
        }
    }
}

sub check_nginx_health {
    my ($block) = @_;
    my $name = $block->name;
    my $text = error_log_text();

    my @crashes = $text =~ /^.*exited on signal (?:4|6|7|8|11)\b.*$/mg;
    if (@crashes) {
        fail("$name - no nginx process crashed");
        diag(join "\n", @crashes);
    }
    if ($NginxPid && waitpid($NginxPid, POSIX::WNOHANG()) == $NginxPid) {
        my $status = $?;
        $NginxPid = undef;
        fail("$name - nginx is still running at the end of the block");
        diag(sprintf("nginx exited (status %d, signal %d)\n", $status >> 8, $status & 127)
             . tail_lines($text, 15));
    }
}

sub check_valgrind {
    my ($name) = @_;
    my @reports;
    for my $log (glob "$ServRoot/logs/valgrind.*.log") {
        my $text = read_file($log) // '';
        push @reports, "$log:\n$text" if $text =~ /\S/;
    }
    ok(!@reports, "$name - valgrind reports nothing") or diag(join "\n", @reports);
}

sub cleanup_all {
    end_children();
    stop_nginx();
    standin_stop();
}

END {
    if ($$ == $MainPid) {
        local $?;
        cleanup_all();
    }
}

1;
