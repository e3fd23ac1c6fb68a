// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.20;

/// @title RLC (development)
/// @notice A plain ERC-20 token standing in for RLC on development networks, with the same
/// 9 decimals as the real token. The whole initial supply goes to the deployer; there is no
/// minting or burning afterwards. Never deploy it on a real network: the bridge there locks
/// the real RLC token.
contract Rlc {
    /// @notice The token's name.
    string public constant name = "RLC (development)";
    /// @notice The token's ticker symbol.
    string public constant symbol = "RLC";
    /// @notice Number of decimals of the base unit (1 RLC = 10**9 units, as for real RLC).
    uint8 public constant decimals = 9;

    /// @notice Total number of base units in existence; fixed at deployment.
    uint256 public totalSupply;

    mapping(address => uint256) private balances;
    mapping(address => mapping(address => uint256)) private allowances;

    /// @notice Emitted when `value` units move from `from` to `to` (`from` is zero at mint).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice Emitted when `owner` allows `spender` to move up to `value` of its units.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice `account` holds `balance` units, fewer than the `needed` it tried to move.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice `spender` may move only `allowance` of `owner`'s units, fewer than `needed`.
    error InsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);
    /// @notice Transfers to the zero address are refused, as they would destroy units.
    error ZeroAddressRecipient();

    /// @notice Creates `initialSupply` units, all owned by the deployer.
    /// @param initialSupply Supply in base units (10**9 per RLC).
    constructor(uint256 initialSupply) {
        totalSupply = initialSupply;
        balances[msg.sender] = initialSupply;
        emit Transfer(address(0), msg.sender, initialSupply);
    }

    /// @notice The number of units `account` holds.
    function balanceOf(address account) external view returns (uint256) {
        return balances[account];
    }

    /// @notice How many of `owner`'s units `spender` may still move with transferFrom.
    function allowance(address owner, address spender) external view returns (uint256) {
        return allowances[owner][spender];
    }

    /// @notice Moves `value` units from the caller to `to`.
    /// @return Always true; failures revert.
    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    /// @notice Sets to `value` the number of the caller's units that `spender` may move.
    /// @return Always true.
    function approve(address spender, uint256 value) external returns (bool) {
        allowances[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Moves `value` units from `from` to `to` out of the allowance `from` gave the
    /// caller. An allowance of type(uint256).max is unlimited and is not decreased.
    /// @return Always true; failures revert.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowances[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert InsufficientAllowance(from, msg.sender, allowed, value);
            unchecked {
                allowances[from][msg.sender] = allowed - value;
            }
        }
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) private {
        if (to == address(0)) revert ZeroAddressRecipient();
        uint256 balance = balances[from];
        if (balance < value) revert InsufficientBalance(from, balance, value);
        unchecked {
            balances[from] = balance - value;
            // Cannot overflow: the sum of all balances is totalSupply.
            balances[to] += value;
        }
        emit Transfer(from, to, value);
    }
}
