# A short soak (scripts/seadragon-soak) as part of the suite: 30 s of mixed
# sources with 2 workers, clients leaving while parked and while streaming,
# and an Ollama that fails on demand.  The script checks that the queue is
# empty, the gate free, every request accounted for, and the workers'
# memory and descriptors back to their level after the warm-up; `make soak`
# runs it longer.
use lib 't/lib';
use Test::More;
use JSON::PP ();
use FindBin;

plan skip_all => 'the soak measures nginx itself, not under valgrind'
    if $ENV{TEST_NGINX_USE_VALGRIND};

my $root = "$FindBin::Bin/..";
my $json = "$root/build/soak-test.json";
unlink $json;
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $build = $ENV{SEADRAGON_BUILD} || "$root/build";
my $out = `'$root/scripts/seadragon-soak' --seconds 30 --nginx '$nginx' --build '$build' --json '$json' 2>&1`;
my $status = $? >> 8;
note($out);
is($status, 0, 'the soak passes its own checks') or diag($out);

open my $fh, '<', $json or die "no result from the soak: $!\n$out";
my $r = JSON::PP::decode_json(do { local $/; <$fh> });
is_deeply($r->{failures}, [], 'no invariant was broken');
cmp_ok($r->{requests}, '>', 100, 'the soak sent a real load');
for my $source (qw(coding chat api)) {
    my $s = $r->{sources}{$source};
    is($s->{sent}, $s->{received}, "$source: every request sent was received");
    is($s->{received}, $s->{served} + $s->{errors} + $s->{rejected} + $s->{aborted},
       "$source: received = served + errors + rejected + aborted");
}
my %total;
for my $s (values %{ $r->{sources} }) { $total{$_} += $s->{$_} for keys %$s }
cmp_ok($total{$_}, '>', 0, "the soak produced some $_") for qw(served errors rejected aborted);
ok(keys %{ $r->{workers_footprint} } == 2, 'two workers were measured');

done_testing();
