// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.20;

/// @dev The part of ERC-20 the bridge uses.
interface IErc20 {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @title Xiebao RLC bridge (Ethereum side)
/// @notice Locks RLC on Ethereum so that the same amount can be minted on the Xiebao sidechain,
/// and releases locked RLC when M of the N bridge validators sign that it was burnt there.
///
/// A deposit pulls RLC from its sender into this contract and emits `Deposited` with a fresh
/// id (0, 1, 2, ...); the validators watch those events and mint on Xiebao for the recipient.
/// A release pays out RLC that was burnt on Xiebao: anyone may submit it together with at least
/// `threshold` validator signatures over `releaseDigest(id, recipient, amount)`; each id can be
/// released once. The validator set changes only by a quorum of the current validators signing
/// `validatorsDigest(newSet, newThreshold)`, which names the current `validatorNonce` so that
/// signatures cannot be replayed.
///
/// The owner (the deployer) can pause deposits and releases and set the per-transfer and daily
/// limits, and nothing else: it can neither release RLC nor change the validators.
///
/// Signatures are 65 bytes r ‖ s ‖ v with v 27 or 28 and s in the lower half of the curve
/// order, made directly over the 32-byte digest (no EIP-191 prefix); the signers of one call
/// must be given in strictly increasing order of address.
contract Bridge {
    /// @dev Half the order of secp256k1: signatures with a larger s are malleated copies.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    bytes32 private constant RELEASE_TAG = keccak256("XIEBAO_RELEASE_V1");
    bytes32 private constant VALIDATORS_TAG = keccak256("XIEBAO_VALIDATORS_V1");

    address private immutable _token;
    uint64 private immutable _xiebaoChainId;
    address private immutable _owner;

    address[] private _validators;
    mapping(address => bool) private _isValidator;
    uint256 private _threshold;
    uint256 private _validatorNonce;

    uint256 private _depositCount;
    uint256 private _locked;
    mapping(uint256 => bool) private _released;

    bool private _paused;
    uint256 private _maxPerTransfer;
    uint256 private _dailyLimit;
    mapping(uint256 => uint256) private _depositedOn;
    mapping(uint256 => uint256) private _releasedOn;

    /// @notice `from` locked `amount` RLC units, to be minted on Xiebao for `recipient`.
    /// @param id The deposit's number: 0 for the first deposit, then 1, 2, ...
    event Deposited(uint256 indexed id, address indexed from, address indexed recipient, uint256 amount);
    /// @notice `amount` locked RLC units were paid to `recipient` for the Xiebao burn `id`.
    event Released(uint256 indexed id, address indexed recipient, uint256 amount);
    /// @notice The validator set was replaced by `validators` with quorum `threshold`.
    /// @param nonce The validator nonce the change was signed for; validatorNonce() is now
    /// nonce + 1. Not emitted for the initial set given to the constructor.
    event ValidatorsChanged(uint256 indexed nonce, address[] validators, uint256 threshold);
    /// @notice The owner set new limits (in RLC base units).
    event LimitsChanged(uint256 maxPerTransfer, uint256 dailyLimit);
    /// @notice The owner paused (true) or unpaused (false) deposits and releases.
    event PausedChanged(bool paused);

    /// @notice Only the owner may call this function; `caller` is not the owner.
    error NotOwner(address caller);
    /// @notice Deposits and releases are paused.
    error IsPaused();
    /// @notice The amount is zero.
    error ZeroAmount();
    /// @notice The recipient is the zero address.
    error ZeroRecipient();
    /// @notice `amount` is above the per-transfer limit `maxPerTransfer`.
    error OverTransferLimit(uint256 amount, uint256 maxPerTransfer);
    /// @notice On `day` (block.timestamp / 1 days), `used` units have already been deposited
    /// (or released, for a release), and `amount` more would exceed `dailyLimit`.
    error OverDailyLimit(uint256 day, uint256 used, uint256 amount, uint256 dailyLimit);
    /// @notice The burn `id` has already been released.
    error AlreadyReleased(uint256 id);
    /// @notice Signature number `index` is malformed: not 65 bytes, v not 27 or 28, s in the
    /// upper half of the curve order, or no address can be recovered from it.
    error BadSignature(uint256 index);
    /// @notice Signature number `index` recovers to `signer`, which is not a current validator
    /// (a signature over different data recovers to an unrelated address).
    error NotValidator(uint256 index, address signer);
    /// @notice Signature number `index` is by `signer`, whose address is not above the previous
    /// signer's: signers must be sorted by address and distinct.
    error SignersNotIncreasing(uint256 index, address signer);
    /// @notice `given` signatures were supplied, fewer than the `threshold` needed.
    error NotEnoughSignatures(uint256 given, uint256 threshold);
    /// @notice A proposed validator set is invalid, for the reason given.
    error BadValidatorSet(string reason);
    /// @notice The token call failed without giving a reason, returned false, or the token
    /// address holds no contract.
    error TokenTransferFailed();

    /// @notice Deploys the bridge; the deployer becomes the owner.
    /// @param token The RLC token contract (9 decimals).
    /// @param xiebaoChainId The chain id of the Xiebao sidechain this bridge serves.
    /// @param validators The initial validators (non-empty, distinct, non-zero).
    /// @param threshold How many validator signatures a release or a validator change needs
    /// (1 to validators.length).
    /// @param maxPerTransfer The largest amount of one deposit or release, in base units.
    /// @param dailyLimit The most that may be deposited, and separately released, per UTC day.
    constructor(
        address token,
        uint64 xiebaoChainId,
        address[] memory validators,
        uint256 threshold,
        uint256 maxPerTransfer,
        uint256 dailyLimit
    ) {
        _token = token;
        _xiebaoChainId = xiebaoChainId;
        _owner = msg.sender;
        _replaceValidators(validators, threshold);
        _maxPerTransfer = maxPerTransfer;
        _dailyLimit = dailyLimit;
        emit LimitsChanged(maxPerTransfer, dailyLimit);
    }

    modifier onlyOwner() {
        if (msg.sender != _owner) revert NotOwner(msg.sender);
        _;
    }

    modifier whenNotPaused() {
        if (_paused) revert IsPaused();
        _;
    }

    // ---------------------------------------------------------------------------------------
    // Deposits and releases

    /// @notice Locks `amount` RLC units of the caller (who must have approved the bridge for
    /// them) to be minted on Xiebao for `recipient`.
    /// @param amount Base units to lock: positive and within the per-transfer and daily limits.
    /// @param recipient The Xiebao address to credit.
    /// @return id The deposit's id, as emitted in `Deposited`.
    function deposit(uint256 amount, address recipient) external whenNotPaused returns (uint256 id) {
        if (amount == 0) revert ZeroAmount();
        if (recipient == address(0)) revert ZeroRecipient();
        uint256 day = _checkLimits(_depositedOn, amount);

        id = _depositCount;
        _depositCount = id + 1;
        _depositedOn[day] += amount;
        _locked += amount;
        emit Deposited(id, msg.sender, recipient, amount);

        _callToken(abi.encodeCall(IErc20.transferFrom, (msg.sender, address(this), amount)));
    }

    /// @notice Pays `amount` locked RLC units to `recipient` for the Xiebao burn `id`, on the
    /// strength of at least `threshold()` validator signatures over
    /// `releaseDigest(id, recipient, amount)`. Anyone may submit it.
    /// @param id The burn's id on Xiebao; each id is released at most once.
    /// @param recipient The Ethereum address to pay.
    /// @param amount Base units to pay: positive and within the per-transfer and daily limits.
    /// @param signatures 65-byte signatures r ‖ s ‖ v, signers in increasing address order.
    function release(uint256 id, address recipient, uint256 amount, bytes[] calldata signatures)
        external
        whenNotPaused
    {
        if (_released[id]) revert AlreadyReleased(id);
        if (amount == 0) revert ZeroAmount();
        if (recipient == address(0)) revert ZeroRecipient();
        uint256 day = _checkLimits(_releasedOn, amount);
        _checkSignatures(releaseDigest(id, recipient, amount), signatures);

        _released[id] = true;
        _releasedOn[day] += amount;
        // Reverts (panic 0x11) if the validators signed for more than is locked.
        _locked -= amount;
        emit Released(id, recipient, amount);

        _callToken(abi.encodeCall(IErc20.transfer, (recipient, amount)));
    }

    // ---------------------------------------------------------------------------------------
    // Validators

    /// @notice Replaces the validator set, on the strength of at least `threshold()` signatures
    /// of the current validators over `validatorsDigest(validators, threshold)`. Anyone may
    /// submit it; it works while paused too.
    /// @param validators The new set: non-empty, distinct, non-zero addresses.
    /// @param threshold The new quorum, 1 to validators.length.
    /// @param signatures 65-byte signatures r ‖ s ‖ v, signers in increasing address order.
    function setValidators(address[] calldata validators, uint256 threshold, bytes[] calldata signatures)
        external
    {
        uint256 nonce = _validatorNonce;
        _checkSignatures(validatorsDigest(validators, threshold), signatures);

        _validatorNonce = nonce + 1;
        _replaceValidators(validators, threshold);
        emit ValidatorsChanged(nonce, validators, threshold);
    }

    // ---------------------------------------------------------------------------------------
    // Owner

    /// @notice Sets the per-transfer and daily limits (base units); owner only. Amounts
    /// already counted for today stay counted.
    function setLimits(uint256 maxPerTransfer, uint256 dailyLimit) external onlyOwner {
        _maxPerTransfer = maxPerTransfer;
        _dailyLimit = dailyLimit;
        emit LimitsChanged(maxPerTransfer, dailyLimit);
    }

    /// @notice Stops deposits and releases until `unpause`; owner only.
    function pause() external onlyOwner {
        _paused = true;
        emit PausedChanged(true);
    }

    /// @notice Lets deposits and releases resume; owner only.
    function unpause() external onlyOwner {
        _paused = false;
        emit PausedChanged(false);
    }

    // ---------------------------------------------------------------------------------------
    // Views

    /// @notice The RLC token contract.
    function token() external view returns (address) {
        return _token;
    }

    /// @notice The chain id of the Xiebao sidechain, part of every release digest.
    function xiebaoChainId() external view returns (uint64) {
        return _xiebaoChainId;
    }

    /// @notice The owner, who may pause and set limits.
    function owner() external view returns (address) {
        return _owner;
    }

    /// @notice The current validators, in the order they were given.
    function validators() external view returns (address[] memory) {
        return _validators;
    }

    /// @notice How many validator signatures a release or a validator change needs.
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @notice How many times the validator set has been changed; named in validatorsDigest.
    function validatorNonce() external view returns (uint256) {
        return _validatorNonce;
    }

    /// @notice The number of deposits so far, which is also the id of the next one.
    function depositCount() external view returns (uint256) {
        return _depositCount;
    }

    /// @notice RLC units deposited and not yet released.
    function locked() external view returns (uint256) {
        return _locked;
    }

    /// @notice Whether the Xiebao burn `id` has been released.
    function released(uint256 id) external view returns (bool) {
        return _released[id];
    }

    /// @notice Whether deposits and releases are paused.
    function paused() external view returns (bool) {
        return _paused;
    }

    /// @notice The largest amount of one deposit or release, in base units.
    function maxPerTransfer() external view returns (uint256) {
        return _maxPerTransfer;
    }

    /// @notice The most that may be deposited, and separately released, per day.
    function dailyLimit() external view returns (uint256) {
        return _dailyLimit;
    }

    /// @notice Base units deposited on `day` (block.timestamp / 1 days).
    function depositedOn(uint256 day) external view returns (uint256) {
        return _depositedOn[day];
    }

    /// @notice Base units released on `day` (block.timestamp / 1 days).
    function releasedOn(uint256 day) external view returns (uint256) {
        return _releasedOn[day];
    }

    /// @notice The digest validators sign to release `amount` to `recipient` for burn `id`:
    /// keccak256(abi.encode(keccak256("XIEBAO_RELEASE_V1"), block.chainid, address(this),
    /// xiebaoChainId, id, recipient, amount)).
    function releaseDigest(uint256 id, address recipient, uint256 amount) public view returns (bytes32) {
        return keccak256(abi.encode(RELEASE_TAG, block.chainid, address(this), _xiebaoChainId, id, recipient, amount));
    }

    /// @notice The digest the current validators sign to replace themselves by `validators`
    /// with quorum `threshold`: keccak256(abi.encode(keccak256("XIEBAO_VALIDATORS_V1"),
    /// block.chainid, address(this), validatorNonce, keccak256(abi.encodePacked(validators)),
    /// threshold)). abi.encodePacked pads each address of the array to 32 bytes.
    function validatorsDigest(address[] calldata validators, uint256 threshold) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                VALIDATORS_TAG,
                block.chainid,
                address(this),
                _validatorNonce,
                keccak256(abi.encodePacked(validators)),
                threshold
            )
        );
    }

    // ---------------------------------------------------------------------------------------
    // Internals

    /// @dev Checks `amount` against the per-transfer limit and against what `used` counts for
    /// today; returns today.
    function _checkLimits(mapping(uint256 => uint256) storage used, uint256 amount)
        private
        view
        returns (uint256 day)
    {
        uint256 max = _maxPerTransfer;
        if (amount > max) revert OverTransferLimit(amount, max);
        day = block.timestamp / 1 days;
        uint256 sofar = used[day];
        uint256 limit = _dailyLimit;
        // Written so as not to overflow, and to hold when the limit was lowered below `sofar`.
        if (sofar > limit || amount > limit - sofar) revert OverDailyLimit(day, sofar, amount, limit);
    }

    /// @dev Reverts unless `signatures` holds at least `_threshold` valid signatures over
    /// `digest`, all by current validators, in strictly increasing order of signer address.
    function _checkSignatures(bytes32 digest, bytes[] calldata signatures) private view {
        uint256 given = signatures.length;
        uint256 needed = _threshold;
        if (given < needed) revert NotEnoughSignatures(given, needed);
        address previous = address(0);
        for (uint256 i = 0; i < given; ++i) {
            address signer = _recover(digest, signatures[i], i);
            if (!_isValidator[signer]) revert NotValidator(i, signer);
            if (signer <= previous) revert SignersNotIncreasing(i, signer);
            previous = signer;
        }
    }

    /// @dev The signer of the 65-byte signature r ‖ s ‖ v over `digest`; reverts with
    /// BadSignature(index) if it is malformed, malleable or recovers nothing.
    function _recover(bytes32 digest, bytes calldata signature, uint256 index) private pure returns (address) {
        if (signature.length != 65) revert BadSignature(index);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v != 27 && v != 28) revert BadSignature(index);
        if (uint256(s) > HALF_ORDER) revert BadSignature(index);
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert BadSignature(index);
        return signer;
    }

    /// @dev Checks the new set and stores it in place of the current one.
    function _replaceValidators(address[] memory newSet, uint256 newThreshold) private {
        uint256 count = newSet.length;
        if (count == 0) revert BadValidatorSet("empty");
        if (newThreshold == 0) revert BadValidatorSet("threshold is zero");
        if (newThreshold > count) revert BadValidatorSet("threshold above the number of validators");

        address[] storage current = _validators;
        for (uint256 i = 0; i < current.length; ++i) {
            _isValidator[current[i]] = false;
        }
        for (uint256 i = 0; i < count; ++i) {
            address validator = newSet[i];
            if (validator == address(0)) revert BadValidatorSet("zero address");
            if (_isValidator[validator]) revert BadValidatorSet("duplicate validator");
            _isValidator[validator] = true;
        }
        _validators = newSet;
        _threshold = newThreshold;
    }

    /// @dev Calls the token with `data` and reverts unless it succeeded: a revert with data is
    /// passed on unchanged (so the token's own error reaches the caller); a revert without data,
    /// a false result, or a token address without code gives TokenTransferFailed. A call that
    /// returns nothing counts as success, as some older tokens return no value.
    function _callToken(bytes memory data) private {
        address tokenAddress = _token;
        (bool ok, bytes memory result) = tokenAddress.call(data);
        if (!ok) {
            if (result.length > 0) {
                assembly ("memory-safe") {
                    revert(add(result, 32), mload(result))
                }
            }
            revert TokenTransferFailed();
        }
        if (result.length == 0) {
            if (tokenAddress.code.length == 0) revert TokenTransferFailed();
        } else if (result.length < 32 || abi.decode(result, (uint256)) != 1) {
            revert TokenTransferFailed();
        }
    }
}
