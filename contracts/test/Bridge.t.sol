// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.20;

import {Bridge} from "../src/Bridge.sol";
import {Rlc} from "../src/Rlc.sol";

/// @dev The forge cheatcodes these tests use.
interface Vm {
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function addr(uint256 privateKey) external pure returns (address);
    function warp(uint256 timestamp) external;
    function prank(address sender) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit(bool topic1, bool topic2, bool topic3, bool data, address emitter) external;
}

/// @dev Tests of Bridge (and of Rlc, which stands in for RLC) run by scripts/test-contracts.sh.
contract BridgeTest {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 private constant SECP256K1_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
    uint256 private constant UNIT = 1e9; // one RLC
    uint256 private constant SUPPLY = 1_000_000 * UNIT;
    uint256 private constant MAX = 1_000 * UNIT;
    uint256 private constant DAILY = 3_000 * UNIT;
    uint64 private constant XIEBAO_CHAIN_ID = 4242;
    uint256 private constant THRESHOLD = 3;

    address private constant ALICE = address(0xA11CE);
    address private constant BOB = address(0xB0B);
    address private constant CAROL = address(0xCA201);

    Rlc private token;
    Bridge private bridge;
    uint256[] private keys; // the validators' private keys, in deployment order

    event Deposited(uint256 indexed id, address indexed from, address indexed recipient, uint256 amount);
    event Released(uint256 indexed id, address indexed recipient, uint256 amount);
    event ValidatorsChanged(uint256 indexed nonce, address[] validators, uint256 threshold);
    event LimitsChanged(uint256 maxPerTransfer, uint256 dailyLimit);
    event PausedChanged(bool paused);
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function setUp() public {
        token = new Rlc(SUPPLY);
        for (uint256 k = 0x1001; k <= 0x1005; ++k) keys.push(k);
        bridge = new Bridge(address(token), XIEBAO_CHAIN_ID, addrs(keys), THRESHOLD, MAX, DAILY);
        require(token.transfer(ALICE, 100_000 * UNIT));
        require(token.transfer(BOB, 100_000 * UNIT));
        vm.prank(ALICE);
        require(token.approve(address(bridge), type(uint256).max));
        vm.prank(BOB);
        require(token.approve(address(bridge), type(uint256).max));
    }

    // -----------------------------------------------------------------------------------------
    // Helpers

    function addrs(uint256[] memory ks) private pure returns (address[] memory out) {
        out = new address[](ks.length);
        for (uint256 i = 0; i < ks.length; ++i) out[i] = vm.addr(ks[i]);
    }

    function list(uint256 a) private pure returns (uint256[] memory out) {
        out = new uint256[](1);
        out[0] = a;
    }

    function list(uint256 a, uint256 b) private pure returns (uint256[] memory out) {
        out = new uint256[](2);
        (out[0], out[1]) = (a, b);
    }

    function list(uint256 a, uint256 b, uint256 c) private pure returns (uint256[] memory out) {
        out = new uint256[](3);
        (out[0], out[1], out[2]) = (a, b, c);
    }

    /// @dev The keys ordered by the address they control, as the bridge wants signers.
    function sorted(uint256[] memory ks) private pure returns (uint256[] memory out) {
        out = new uint256[](ks.length);
        for (uint256 i = 0; i < ks.length; ++i) out[i] = ks[i];
        for (uint256 i = 1; i < out.length; ++i) {
            uint256 key = out[i];
            uint256 j = i;
            while (j > 0 && vm.addr(out[j - 1]) > vm.addr(key)) {
                out[j] = out[j - 1];
                --j;
            }
            out[j] = key;
        }
    }

    function sig(uint256 key, bytes32 digest) private pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Signatures by `ks`, in the order given.
    function sigs(uint256[] memory ks, bytes32 digest) private pure returns (bytes[] memory out) {
        out = new bytes[](ks.length);
        for (uint256 i = 0; i < ks.length; ++i) out[i] = sig(ks[i], digest);
    }

    /// @dev Signatures by the first THRESHOLD validators, sorted: a valid quorum.
    function quorum(bytes32 digest) private view returns (bytes[] memory) {
        return sigs(sorted(list(keys[0], keys[1], keys[2])), digest);
    }

    function releaseSigs(uint256 id, address recipient, uint256 amount) private view returns (bytes[] memory) {
        return quorum(bridge.releaseDigest(id, recipient, amount));
    }

    function deposit(address from, uint256 amount) private returns (uint256 id) {
        vm.prank(from);
        id = bridge.deposit(amount, from);
    }

    function release(uint256 id, address recipient, uint256 amount) private {
        bridge.release(id, recipient, amount, releaseSigs(id, recipient, amount));
    }

    function today() private view returns (uint256) {
        return block.timestamp / 1 days;
    }

    /// @dev The address that `signature` recovers to over `digest` (zero if none).
    function recover(bytes32 digest, bytes memory signature) private pure returns (address) {
        require(signature.length == 65);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 32))
            s := mload(add(signature, 64))
            v := byte(0, mload(add(signature, 96)))
        }
        return ecrecover(digest, v, r, s);
    }

    function assertLockedIsBalance() private view {
        require(bridge.locked() == token.balanceOf(address(bridge)), "locked differs from the bridge's balance");
    }

    function err(bytes4 selector) private pure returns (bytes memory) {
        return abi.encodeWithSelector(selector);
    }

    // -----------------------------------------------------------------------------------------
    // Deployment and digests

    function test_ConstructorState() public view {
        require(bridge.token() == address(token));
        require(bridge.xiebaoChainId() == XIEBAO_CHAIN_ID);
        require(bridge.owner() == address(this));
        address[] memory current = bridge.validators();
        require(current.length == keys.length);
        for (uint256 i = 0; i < keys.length; ++i) require(current[i] == vm.addr(keys[i]));
        require(bridge.threshold() == THRESHOLD);
        require(bridge.validatorNonce() == 0);
        require(bridge.depositCount() == 0);
        require(bridge.locked() == 0);
        require(!bridge.paused());
        require(bridge.maxPerTransfer() == MAX);
        require(bridge.dailyLimit() == DAILY);
    }

    function test_ConstructorRejectsBadValidatorSets() public {
        address[] memory empty = new address[](0);
        address[] memory two = addrs(list(keys[0], keys[1]));
        address[] memory withZero = new address[](2);
        withZero[0] = vm.addr(keys[0]);
        address[] memory duplicate = addrs(list(keys[0], keys[1], keys[0]));

        vm.expectRevert(abi.encodeWithSelector(Bridge.BadValidatorSet.selector, "empty"));
        new Bridge(address(token), XIEBAO_CHAIN_ID, empty, 1, MAX, DAILY);
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadValidatorSet.selector, "threshold is zero"));
        new Bridge(address(token), XIEBAO_CHAIN_ID, two, 0, MAX, DAILY);
        vm.expectRevert(
            abi.encodeWithSelector(Bridge.BadValidatorSet.selector, "threshold above the number of validators")
        );
        new Bridge(address(token), XIEBAO_CHAIN_ID, two, 3, MAX, DAILY);
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadValidatorSet.selector, "zero address"));
        new Bridge(address(token), XIEBAO_CHAIN_ID, withZero, 1, MAX, DAILY);
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadValidatorSet.selector, "duplicate validator"));
        new Bridge(address(token), XIEBAO_CHAIN_ID, duplicate, 2, MAX, DAILY);

        Bridge single = new Bridge(address(token), XIEBAO_CHAIN_ID, two, 2, MAX, DAILY);
        require(single.threshold() == 2 && single.validators().length == 2);
    }

    /// @dev The digests, spelt out word by word rather than with abi.encode.
    function test_DigestLayout() public view {
        uint256 id = 7;
        address recipient = BOB;
        uint256 amount = 200 * UNIT;
        bytes memory release_ = bytes.concat(
            keccak256("XIEBAO_RELEASE_V1"),
            bytes32(block.chainid),
            bytes32(uint256(uint160(address(bridge)))),
            bytes32(uint256(XIEBAO_CHAIN_ID)),
            bytes32(id),
            bytes32(uint256(uint160(recipient))),
            bytes32(amount)
        );
        require(release_.length == 7 * 32);
        require(bridge.releaseDigest(id, recipient, amount) == keccak256(release_));

        address[] memory set = addrs(list(0x2001, 0x2002, 0x2003));
        bytes memory packed = bytes.concat(
            bytes32(uint256(uint160(set[0]))), bytes32(uint256(uint160(set[1]))), bytes32(uint256(uint160(set[2])))
        );
        bytes memory validators_ = bytes.concat(
            keccak256("XIEBAO_VALIDATORS_V1"),
            bytes32(block.chainid),
            bytes32(uint256(uint160(address(bridge)))),
            bytes32(bridge.validatorNonce()),
            keccak256(packed),
            bytes32(uint256(2))
        );
        require(bridge.validatorsDigest(set, 2) == keccak256(validators_));
    }

    /// @dev Fixed vectors, computed independently (Python, eth-abi); contracts/README.md
    /// lists them for the Rust side.
    function test_DigestVectors() public view {
        require(block.chainid == 31337, "forge's default chain id");
        require(address(bridge) == 0x2e234DAe75C793f67A35089C9d99245E1C58470b, "deployment address moved");
        require(
            bridge.releaseDigest(7, BOB, 200 * UNIT) == 0x7dccaf713674b8a9899f0b0da2b48a622b9261ea2a6fac99cdf5be44ba71b712
        );
        address[] memory set = addrs(list(0x2001, 0x2002, 0x2003));
        address[] memory four = new address[](4);
        (four[0], four[1], four[2], four[3]) = (set[0], set[1], set[2], vm.addr(0x2004));
        require(
            bridge.validatorsDigest(four, 2) == 0xd5688b4a078945dfc1aa92125013e08e6812db88715da0048034775fc721c289
        );
    }

    /// @dev A signature made outside forge (Python, eth-account's unsafe_sign_hash with key
    /// 0x1001 over the raw digest) releases from a one-validator bridge.
    function test_ExternallyMadeSignatureIsAccepted() public {
        address[] memory one = addrs(list(0x1001));
        Bridge solo = new Bridge(address(token), XIEBAO_CHAIN_ID, one, 1, MAX, DAILY);
        require(address(solo) == 0xF62849F9A0B5Bf2913b396098F7c7019b51A820a, "deployment address moved");
        bytes32 digest = solo.releaseDigest(9, CAROL, 123456789);
        require(digest == 0xa7935f7c1bf516106a86323986170ba2e3b1058b64a8221b02af098f3ede187a);
        vm.prank(ALICE);
        require(token.approve(address(solo), UNIT));
        vm.prank(ALICE);
        solo.deposit(UNIT, ALICE);

        bytes[] memory signatures = new bytes[](1);
        signatures[0] = abi.encodePacked(
            bytes32(0xd372a120f5494e512ec49589d21cd76e1d32c6934d317fa543b7e5e3cbf2f44c), // r
            bytes32(0x2f837a6a01ace37b0d877ca297705331b38d42546aa7f42e2d973a4f8aa09d05), // s
            uint8(28) // v
        );
        solo.release(9, CAROL, 123456789, signatures);
        require(token.balanceOf(CAROL) == 123456789 && solo.locked() == UNIT - 123456789);
    }

    // -----------------------------------------------------------------------------------------
    // Deposits

    function test_DepositLocksAndEmitsSequentialIds() public {
        vm.expectEmit(true, true, true, true, address(bridge));
        emit Deposited(0, ALICE, CAROL, 100 * UNIT);
        vm.prank(ALICE);
        require(bridge.deposit(100 * UNIT, CAROL) == 0);

        vm.expectEmit(true, true, true, true, address(bridge));
        emit Deposited(1, BOB, ALICE, 250 * UNIT);
        vm.expectEmit(true, true, true, true, address(token));
        emit Transfer(BOB, address(bridge), 250 * UNIT);
        vm.prank(BOB);
        require(bridge.deposit(250 * UNIT, ALICE) == 1);

        vm.prank(ALICE);
        require(bridge.deposit(1, ALICE) == 2);

        require(bridge.depositCount() == 3);
        require(bridge.locked() == 350 * UNIT + 1);
        require(token.balanceOf(ALICE) == 100_000 * UNIT - 100 * UNIT - 1);
        require(token.balanceOf(BOB) == 100_000 * UNIT - 250 * UNIT);
        require(bridge.depositedOn(today()) == 350 * UNIT + 1);
        require(bridge.releasedOn(today()) == 0);
        assertLockedIsBalance();
    }

    function test_DepositRejectsBadInput() public {
        vm.prank(ALICE);
        vm.expectRevert(err(Bridge.ZeroAmount.selector));
        bridge.deposit(0, ALICE);

        vm.prank(ALICE);
        vm.expectRevert(err(Bridge.ZeroRecipient.selector));
        bridge.deposit(1, address(0));

        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverTransferLimit.selector, MAX + 1, MAX));
        bridge.deposit(MAX + 1, ALICE);

        // The token's own error comes through unchanged.
        vm.prank(CAROL);
        vm.expectRevert(
            abi.encodeWithSelector(Rlc.InsufficientAllowance.selector, CAROL, address(bridge), 0, 5 * UNIT)
        );
        bridge.deposit(5 * UNIT, CAROL);

        require(bridge.depositCount() == 0 && bridge.locked() == 0 && bridge.depositedOn(today()) == 0);
        assertLockedIsBalance();
    }

    function test_DepositDailyLimitResetsNextDay() public {
        vm.warp(10 days + 5 hours);
        uint256 day = 10;
        deposit(ALICE, MAX);
        deposit(BOB, MAX);
        deposit(ALICE, MAX - 1);
        require(bridge.depositedOn(day) == DAILY - 1);
        deposit(BOB, 1); // exactly at the limit
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverDailyLimit.selector, day, DAILY, 1, DAILY));
        bridge.deposit(1, ALICE);

        // Releases are counted apart from deposits: the same day still allows them.
        release(0, CAROL, MAX);
        require(bridge.releasedOn(day) == MAX && bridge.depositedOn(day) == DAILY);

        vm.warp(11 days - 1);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverDailyLimit.selector, day, DAILY, 1, DAILY));
        bridge.deposit(1, ALICE);

        vm.warp(11 days);
        require(deposit(ALICE, MAX) == 4);
        require(bridge.depositedOn(day + 1) == MAX && bridge.depositedOn(day) == DAILY);
        assertLockedIsBalance();
    }

    // -----------------------------------------------------------------------------------------
    // Releases

    function test_ReleasePaysExactly() public {
        deposit(ALICE, 500 * UNIT);
        uint256 carolBefore = token.balanceOf(CAROL);
        bytes[] memory signatures = releaseSigs(7, CAROL, 200 * UNIT);

        vm.expectEmit(true, true, true, true, address(bridge));
        emit Released(7, CAROL, 200 * UNIT);
        vm.expectEmit(true, true, true, true, address(token));
        emit Transfer(address(bridge), CAROL, 200 * UNIT);
        vm.prank(BOB); // anyone may submit
        bridge.release(7, CAROL, 200 * UNIT, signatures);

        require(token.balanceOf(CAROL) == carolBefore + 200 * UNIT);
        require(bridge.locked() == 300 * UNIT);
        require(bridge.released(7));
        require(!bridge.released(0) && !bridge.released(6) && !bridge.released(8));
        require(bridge.releasedOn(today()) == 200 * UNIT);
        assertLockedIsBalance();

        // All five validators (more than the threshold) are accepted as well.
        bridge.release(8, CAROL, 50 * UNIT, sigs(sorted(keys), bridge.releaseDigest(8, CAROL, 50 * UNIT)));
        require(token.balanceOf(CAROL) == carolBefore + 250 * UNIT);
        require(bridge.locked() == 250 * UNIT);
        assertLockedIsBalance();
    }

    function test_ReleaseNeedsThresholdSignatures() public {
        deposit(ALICE, 500 * UNIT);
        bytes32 digest = bridge.releaseDigest(1, CAROL, UNIT);
        bytes[] memory two = sigs(sorted(list(keys[3], keys[4])), digest);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotEnoughSignatures.selector, 2, THRESHOLD));
        bridge.release(1, CAROL, UNIT, two);

        vm.expectRevert(abi.encodeWithSelector(Bridge.NotEnoughSignatures.selector, 0, THRESHOLD));
        bridge.release(1, CAROL, UNIT, new bytes[](0));

        require(!bridge.released(1) && bridge.locked() == 500 * UNIT);
        bridge.release(1, CAROL, UNIT, sigs(sorted(list(keys[2], keys[3], keys[4])), digest));
        require(bridge.released(1));
    }

    function test_ReleaseRejectsNonValidator() public {
        deposit(ALICE, 500 * UNIT);
        uint256 outsider = 0x3001;
        uint256[] memory signers = sorted(list(keys[0], keys[1], outsider));
        uint256 index = 0;
        while (signers[index] != outsider) ++index;
        bytes[] memory signatures = sigs(signers, bridge.releaseDigest(1, CAROL, UNIT));
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotValidator.selector, index, vm.addr(outsider)));
        bridge.release(1, CAROL, UNIT, signatures);
    }

    function test_ReleaseRejectsUnsortedAndDuplicateSigners() public {
        deposit(ALICE, 500 * UNIT);
        bytes32 digest = bridge.releaseDigest(1, CAROL, UNIT);
        uint256[] memory up = sorted(list(keys[0], keys[1], keys[2]));

        uint256[] memory swapped = list(up[0], up[2], up[1]);
        bytes[] memory signatures = sigs(swapped, digest);
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignersNotIncreasing.selector, 2, vm.addr(up[1])));
        bridge.release(1, CAROL, UNIT, signatures);

        signatures = sigs(list(up[2], up[1], up[0]), digest);
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignersNotIncreasing.selector, 1, vm.addr(up[1])));
        bridge.release(1, CAROL, UNIT, signatures);

        // Two validators cannot make a quorum of three by one of them signing twice.
        signatures = sigs(list(up[0], up[1], up[1]), digest);
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignersNotIncreasing.selector, 2, vm.addr(up[1])));
        bridge.release(1, CAROL, UNIT, signatures);

        signatures = sigs(list(up[0], up[0], up[1]), digest);
        vm.expectRevert(abi.encodeWithSelector(Bridge.SignersNotIncreasing.selector, 1, vm.addr(up[0])));
        bridge.release(1, CAROL, UNIT, signatures);

        require(!bridge.released(1));
        bridge.release(1, CAROL, UNIT, sigs(up, digest));
        require(bridge.released(1));
    }

    /// @dev A quorum signed over `signed` submitted as a release of (id, recipient, amount):
    /// the first signature recovers to an unrelated address, which must be refused.
    function expectWrongDigestRefused(bytes32 signed, uint256 id, address recipient, uint256 amount) private {
        bytes[] memory signatures = quorum(signed);
        bytes32 actual = bridge.releaseDigest(id, recipient, amount);
        require(signed != actual);
        address recovered = recover(actual, signatures[0]);
        for (uint256 i = 0; i < keys.length; ++i) require(recovered != vm.addr(keys[i]));
        if (recovered == address(0)) {
            vm.expectRevert(abi.encodeWithSelector(Bridge.BadSignature.selector, 0));
        } else {
            vm.expectRevert(abi.encodeWithSelector(Bridge.NotValidator.selector, 0, recovered));
        }
        bridge.release(id, recipient, amount, signatures);
    }

    function test_ReleaseRejectsSignaturesOverOtherData() public {
        deposit(ALICE, 500 * UNIT);
        uint256 amount = 100 * UNIT;
        expectWrongDigestRefused(bridge.releaseDigest(1, CAROL, amount + 1), 1, CAROL, amount);
        expectWrongDigestRefused(bridge.releaseDigest(1, BOB, amount), 1, CAROL, amount);
        expectWrongDigestRefused(bridge.releaseDigest(2, CAROL, amount), 1, CAROL, amount);

        // Another sidechain, another Ethereum chain, another bridge, another message kind.
        bytes32 tag = keccak256("XIEBAO_RELEASE_V1");
        expectWrongDigestRefused(
            keccak256(abi.encode(tag, block.chainid, address(bridge), XIEBAO_CHAIN_ID + 1, 1, CAROL, amount)),
            1,
            CAROL,
            amount
        );
        expectWrongDigestRefused(
            keccak256(abi.encode(tag, block.chainid + 1, address(bridge), XIEBAO_CHAIN_ID, 1, CAROL, amount)),
            1,
            CAROL,
            amount
        );
        expectWrongDigestRefused(
            keccak256(abi.encode(tag, block.chainid, address(token), XIEBAO_CHAIN_ID, 1, CAROL, amount)),
            1,
            CAROL,
            amount
        );
        expectWrongDigestRefused(
            keccak256(
                abi.encode(
                    keccak256("XIEBAO_VALIDATORS_V1"), block.chainid, address(bridge), XIEBAO_CHAIN_ID, 1, CAROL, amount
                )
            ),
            1,
            CAROL,
            amount
        );

        // The digest is signed as it is, not as an EIP-191 "personal" message.
        bytes32 digest = bridge.releaseDigest(1, CAROL, amount);
        expectWrongDigestRefused(
            keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", digest)), 1, CAROL, amount
        );

        require(!bridge.released(1) && bridge.locked() == 500 * UNIT);
        release(1, CAROL, amount);
        require(bridge.released(1) && bridge.locked() == 400 * UNIT);
    }

    function test_ReleaseRejectsMalformedAndMalleableSignatures() public {
        deposit(ALICE, 500 * UNIT);
        bytes32 digest = bridge.releaseDigest(1, CAROL, UNIT);
        uint256[] memory signers = sorted(list(keys[0], keys[1], keys[2]));
        bytes[] memory good = sigs(signers, digest);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signers[1], digest);
        require(uint256(s) <= SECP256K1_ORDER / 2, "forge signs with low s");

        // The same signature with s replaced by n - s (and v flipped) recovers the same
        // validator, which is why the bridge must refuse it.
        bytes32 highS = bytes32(SECP256K1_ORDER - uint256(s));
        uint8 flipped = v == 27 ? 28 : 27;
        require(ecrecover(digest, flipped, r, highS) == vm.addr(signers[1]));
        expectBadSignature(good, 1, abi.encodePacked(r, highS, flipped), digest);

        expectBadSignature(good, 1, abi.encodePacked(r, s, uint8(29)), digest);
        expectBadSignature(good, 1, abi.encodePacked(r, s, v - 27), digest); // v as 0 or 1
        expectBadSignature(good, 1, abi.encodePacked(r, s), digest); // 64 bytes
        expectBadSignature(good, 1, abi.encodePacked(r, s, v, uint8(0)), digest); // 66 bytes
        expectBadSignature(good, 1, bytes(""), digest);
        expectBadSignature(good, 2, abi.encodePacked(bytes32(0), s, v), digest); // recovers nothing

        require(!bridge.released(1));
        bridge.release(1, CAROL, UNIT, good);
        require(bridge.released(1));
    }

    /// @dev Submits `good` with signature `index` replaced by `bad`; expects BadSignature(index).
    function expectBadSignature(bytes[] memory good, uint256 index, bytes memory bad, bytes32 digest) private {
        require(bridge.releaseDigest(1, CAROL, UNIT) == digest);
        bytes[] memory signatures = new bytes[](good.length);
        for (uint256 i = 0; i < good.length; ++i) signatures[i] = i == index ? bad : good[i];
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadSignature.selector, index));
        bridge.release(1, CAROL, UNIT, signatures);
    }

    function test_ReleaseRejectsReplay() public {
        deposit(ALICE, 500 * UNIT);
        bytes[] memory signatures = releaseSigs(7, CAROL, 100 * UNIT);
        bridge.release(7, CAROL, 100 * UNIT, signatures);

        vm.expectRevert(abi.encodeWithSelector(Bridge.AlreadyReleased.selector, 7));
        bridge.release(7, CAROL, 100 * UNIT, signatures);

        // Even a validly signed release with other terms cannot reuse the id.
        bytes[] memory other = releaseSigs(7, BOB, 1);
        vm.expectRevert(abi.encodeWithSelector(Bridge.AlreadyReleased.selector, 7));
        bridge.release(7, BOB, 1, other);

        require(bridge.locked() == 400 * UNIT && token.balanceOf(CAROL) == 100 * UNIT);
        assertLockedIsBalance();
    }

    function test_ReleaseLimits() public {
        vm.warp(3 days);
        deposit(ALICE, MAX);
        deposit(ALICE, MAX);
        deposit(ALICE, MAX);
        vm.warp(4 days);
        deposit(BOB, MAX);
        deposit(BOB, MAX);
        require(bridge.locked() == 5 * MAX);

        bytes[] memory signatures = releaseSigs(1, CAROL, MAX + 1);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverTransferLimit.selector, MAX + 1, MAX));
        bridge.release(1, CAROL, MAX + 1, signatures);

        signatures = releaseSigs(1, CAROL, 0);
        vm.expectRevert(err(Bridge.ZeroAmount.selector));
        bridge.release(1, CAROL, 0, signatures);

        signatures = releaseSigs(1, address(0), UNIT);
        vm.expectRevert(err(Bridge.ZeroRecipient.selector));
        bridge.release(1, address(0), UNIT, signatures);

        release(1, CAROL, MAX);
        release(2, CAROL, MAX);
        release(3, CAROL, MAX - 5);
        signatures = releaseSigs(4, CAROL, 6);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverDailyLimit.selector, 4, DAILY - 5, 6, DAILY));
        bridge.release(4, CAROL, 6, signatures);
        release(4, CAROL, 5);
        require(bridge.releasedOn(4) == DAILY && bridge.releasedOn(3) == 0);

        vm.warp(5 days);
        release(5, CAROL, MAX);
        require(bridge.releasedOn(5) == MAX);
        require(bridge.locked() == MAX && token.balanceOf(CAROL) == 4 * MAX);

        // The validators cannot release more than is locked: arithmetic underflow (panic 0x11).
        bridge.setLimits(2 * MAX, DAILY);
        signatures = releaseSigs(6, CAROL, MAX + 1);
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", 0x11));
        bridge.release(6, CAROL, MAX + 1, signatures);
        assertLockedIsBalance();
    }

    // -----------------------------------------------------------------------------------------
    // Owner

    function test_PauseBlocksDepositsAndReleasesAndIsOwnerOnly() public {
        deposit(ALICE, 500 * UNIT);
        bytes[] memory signatures = releaseSigs(1, CAROL, UNIT);

        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotOwner.selector, ALICE));
        bridge.pause();

        vm.expectEmit(true, true, true, true, address(bridge));
        emit PausedChanged(true);
        bridge.pause();
        require(bridge.paused());

        vm.prank(ALICE);
        vm.expectRevert(err(Bridge.IsPaused.selector));
        bridge.deposit(UNIT, ALICE);
        vm.expectRevert(err(Bridge.IsPaused.selector));
        bridge.release(1, CAROL, UNIT, signatures);

        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotOwner.selector, BOB));
        bridge.unpause();
        require(bridge.paused());

        vm.expectEmit(true, true, true, true, address(bridge));
        emit PausedChanged(false);
        bridge.unpause();
        require(!bridge.paused());

        bridge.release(1, CAROL, UNIT, signatures);
        require(deposit(ALICE, UNIT) == 1);
        require(bridge.locked() == 500 * UNIT);
        assertLockedIsBalance();
    }

    function test_SetLimitsIsOwnerOnlyAndApplies() public {
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotOwner.selector, ALICE));
        bridge.setLimits(1, 1);
        require(bridge.maxPerTransfer() == MAX && bridge.dailyLimit() == DAILY);

        deposit(ALICE, 600 * UNIT);

        vm.expectEmit(true, true, true, true, address(bridge));
        emit LimitsChanged(500 * UNIT, 400 * UNIT);
        bridge.setLimits(500 * UNIT, 400 * UNIT);
        require(bridge.maxPerTransfer() == 500 * UNIT && bridge.dailyLimit() == 400 * UNIT);

        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverTransferLimit.selector, 600 * UNIT, 500 * UNIT));
        bridge.deposit(600 * UNIT, ALICE);
        // Today's 600 already exceed the new daily limit of 400.
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverDailyLimit.selector, 0, 600 * UNIT, 1, 400 * UNIT));
        bridge.deposit(1, ALICE);

        bytes[] memory signatures = releaseSigs(1, CAROL, 500 * UNIT + 1);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverTransferLimit.selector, 500 * UNIT + 1, 500 * UNIT));
        bridge.release(1, CAROL, 500 * UNIT + 1, signatures);
        signatures = releaseSigs(1, CAROL, 401 * UNIT);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverDailyLimit.selector, 0, 0, 401 * UNIT, 400 * UNIT));
        bridge.release(1, CAROL, 401 * UNIT, signatures);
        release(1, CAROL, 400 * UNIT);

        // A zero limit stops transfers altogether.
        bridge.setLimits(0, 0);
        vm.warp(1 days);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(Bridge.OverTransferLimit.selector, 1, 0));
        bridge.deposit(1, ALICE);
        assertLockedIsBalance();
    }

    // -----------------------------------------------------------------------------------------
    // Validator changes

    function newKeys() private pure returns (uint256[] memory ks) {
        ks = new uint256[](4);
        (ks[0], ks[1], ks[2], ks[3]) = (0x2001, 0x2002, 0x2003, 0x2004);
    }

    function test_SetValidatorsByQuorum() public {
        deposit(ALICE, 500 * UNIT);
        address[] memory newSet = addrs(newKeys());
        bytes[] memory signatures = quorum(bridge.validatorsDigest(newSet, 2));

        vm.expectEmit(true, true, true, true, address(bridge));
        emit ValidatorsChanged(0, newSet, 2);
        vm.prank(CAROL); // anyone may submit
        bridge.setValidators(newSet, 2, signatures);

        address[] memory current = bridge.validators();
        require(current.length == 4);
        for (uint256 i = 0; i < 4; ++i) require(current[i] == newSet[i]);
        require(bridge.threshold() == 2 && bridge.validatorNonce() == 1);

        // Replaying the change fails: the digest now names nonce 1, so the old signatures
        // recover to unrelated addresses.
        address recovered = recover(bridge.validatorsDigest(newSet, 2), signatures[0]);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotValidator.selector, 0, recovered));
        bridge.setValidators(newSet, 2, signatures);

        checkOldSetRefusedNewSetAccepted();
    }

    function checkOldSetRefusedNewSetAccepted() private {
        bytes32 digest = bridge.releaseDigest(1, CAROL, UNIT);
        uint256[] memory old = sorted(list(keys[0], keys[1], keys[2]));
        bytes[] memory oldSigs = sigs(old, digest);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotValidator.selector, 0, vm.addr(old[0])));
        bridge.release(1, CAROL, UNIT, oldSigs);

        // The new set works with its own threshold.
        uint256[] memory ks = newKeys();
        bridge.release(1, CAROL, UNIT, sigs(sorted(list(ks[3], ks[1])), digest));
        require(bridge.released(1) && token.balanceOf(CAROL) == UNIT);

        bytes[] memory one = sigs(list(ks[0]), bridge.releaseDigest(2, CAROL, UNIT));
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotEnoughSignatures.selector, 1, 2));
        bridge.release(2, CAROL, UNIT, one);
        assertLockedIsBalance();
    }

    function test_SetValidatorsKeepsOverlapAndWorksWhilePaused() public {
        bridge.pause();
        address[] memory newSet = addrs(list(keys[4], 0x2001));
        bridge.setValidators(newSet, 2, quorum(bridge.validatorsDigest(newSet, 2)));
        bridge.unpause();
        require(bridge.validatorNonce() == 1);

        deposit(ALICE, 10 * UNIT);
        bytes32 digest = bridge.releaseDigest(1, CAROL, UNIT);
        // keys[0] was in the old set only, keys[4] is in both.
        uint256[] memory mixed = sorted(list(keys[0], keys[4]));
        bytes[] memory signatures = sigs(mixed, digest);
        uint256 index = mixed[0] == keys[0] ? 0 : 1;
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotValidator.selector, index, vm.addr(keys[0])));
        bridge.release(1, CAROL, UNIT, signatures);
        bridge.release(1, CAROL, UNIT, sigs(sorted(list(keys[4], 0x2001)), digest));
        require(bridge.released(1));

        // A second change signs over nonce 1, by the set now in place.
        address[] memory third = addrs(list(0x2002));
        bridge.setValidators(third, 1, sigs(sorted(list(keys[4], 0x2001)), bridge.validatorsDigest(third, 1)));
        require(bridge.validatorNonce() == 2 && bridge.validators()[0] == vm.addr(0x2002));
    }

    function test_SetValidatorsRejections() public {
        address[] memory newSet = addrs(list(0x2001, 0x2002, 0x2003));

        // Too few signatures, and signatures by the incoming validators instead of the current.
        bytes32 digest = bridge.validatorsDigest(newSet, 2);
        bytes[] memory two = sigs(sorted(list(keys[0], keys[1])), digest);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotEnoughSignatures.selector, 2, THRESHOLD));
        bridge.setValidators(newSet, 2, two);
        uint256[] memory incoming = sorted(list(0x2001, 0x2002, 0x2003));
        bytes[] memory bySelf = sigs(incoming, digest);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotValidator.selector, 0, vm.addr(incoming[0])));
        bridge.setValidators(newSet, 2, bySelf);

        // Signed for threshold 2, submitted with threshold 1.
        bytes[] memory signatures = quorum(digest);
        address recovered = recover(bridge.validatorsDigest(newSet, 1), signatures[0]);
        vm.expectRevert(abi.encodeWithSelector(Bridge.NotValidator.selector, 0, recovered));
        bridge.setValidators(newSet, 1, signatures);

        // Invalid sets are refused even with a quorum.
        expectBadSet(new address[](0), 1, "empty");
        expectBadSet(newSet, 0, "threshold is zero");
        expectBadSet(newSet, 4, "threshold above the number of validators");
        address[] memory withZero = new address[](2);
        withZero[1] = newSet[0];
        expectBadSet(withZero, 1, "zero address");
        address[] memory duplicate = addrs(list(0x2001, 0x2002, 0x2001));
        expectBadSet(duplicate, 2, "duplicate validator");

        require(bridge.validatorNonce() == 0 && bridge.threshold() == THRESHOLD);
        require(bridge.validators().length == keys.length);
    }

    function expectBadSet(address[] memory set, uint256 threshold, string memory reason) private {
        bytes[] memory signatures = quorum(bridge.validatorsDigest(set, threshold));
        vm.expectRevert(abi.encodeWithSelector(Bridge.BadValidatorSet.selector, reason));
        bridge.setValidators(set, threshold, signatures);
    }

    // -----------------------------------------------------------------------------------------
    // The token

    function test_RlcToken() public {
        require(keccak256(bytes(token.name())) == keccak256("RLC (development)"));
        require(keccak256(bytes(token.symbol())) == keccak256("RLC"));
        require(token.decimals() == 9);
        require(token.totalSupply() == SUPPLY);
        require(token.balanceOf(address(this)) == SUPPLY - 200_000 * UNIT);

        vm.prank(CAROL);
        vm.expectRevert(abi.encodeWithSelector(Rlc.InsufficientBalance.selector, CAROL, 0, 1));
        token.transfer(ALICE, 1);

        vm.expectEmit(true, true, true, true, address(token));
        emit Approval(address(this), CAROL, 10);
        require(token.approve(CAROL, 10));
        require(token.allowance(address(this), CAROL) == 10);

        vm.prank(CAROL);
        vm.expectRevert(abi.encodeWithSelector(Rlc.InsufficientAllowance.selector, address(this), CAROL, 10, 11));
        token.transferFrom(address(this), CAROL, 11);

        vm.expectEmit(true, true, true, true, address(token));
        emit Transfer(address(this), BOB, 4);
        vm.prank(CAROL);
        require(token.transferFrom(address(this), BOB, 4));
        require(token.allowance(address(this), CAROL) == 6);
        require(token.balanceOf(BOB) == 100_000 * UNIT + 4);

        // An unlimited allowance stays unlimited.
        require(token.allowance(BOB, address(bridge)) == type(uint256).max);
        deposit(BOB, UNIT);
        require(token.allowance(BOB, address(bridge)) == type(uint256).max);

        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(Rlc.InsufficientBalance.selector, BOB, 100_000 * UNIT + 4 - UNIT, SUPPLY));
        token.transfer(CAROL, SUPPLY);
    }

    // -----------------------------------------------------------------------------------------
    // Fuzzing

    /// @dev A random run of deposits, releases and passing time: locked always equals the
    /// bridge's balance and the deposits less the releases, and no token is created or lost.
    function testFuzz_LockedMatchesBalance(uint256 seed) public {
        address[3] memory users = [ALICE, BOB, CAROL];
        uint256 deposited;
        uint256 paidOut;
        uint256 nextBurn = 100;
        for (uint256 step = 0; step < 24; ++step) {
            uint256 r = uint256(keccak256(abi.encode(seed, step)));
            uint256 op = r % 4;
            uint256 day = today();
            if (op < 2) {
                uint256 room = DAILY - bridge.depositedOn(day);
                uint256 cap = room < MAX ? room : MAX;
                if (cap == 0) continue;
                address from = users[(r >> 8) % 2]; // ALICE or BOB, who hold RLC and approved
                uint256 amount = 1 + (r >> 16) % cap;
                uint256 id = deposit(from, amount);
                require(id == bridge.depositCount() - 1);
                deposited += amount;
            } else if (op == 2) {
                uint256 room = DAILY - bridge.releasedOn(day);
                uint256 cap = room < MAX ? room : MAX;
                if (bridge.locked() < cap) cap = bridge.locked();
                if (cap == 0) continue;
                uint256 amount = 1 + (r >> 16) % cap;
                address to = users[(r >> 8) % 3];
                uint256 before = token.balanceOf(to);
                release(nextBurn, to, amount);
                require(token.balanceOf(to) == before + amount);
                ++nextBurn;
                paidOut += amount;
            } else {
                vm.warp(block.timestamp + (r >> 8) % 2 days);
            }
            assertLockedIsBalance();
            require(bridge.locked() == deposited - paidOut);
            uint256 total = token.balanceOf(address(this)) + token.balanceOf(address(bridge));
            for (uint256 i = 0; i < users.length; ++i) total += token.balanceOf(users[i]);
            require(total == SUPPLY && token.totalSupply() == SUPPLY, "supply not conserved");
        }
    }
}
